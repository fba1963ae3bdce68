"""setuptools hook: wheels and ``pip install .`` ship the GPU code objects.

Metadata lives in pyproject.toml; this file only adds a ``build_py`` step that runs ``hsaco/build.py`` into the
build tree's ``pyquant/kernels/`` (HSACO for AMD with clang-22 or ROCm's clang, cubins and PTX with nvcc). Code
objects already in the source tree are used as they are when they match the sources.

Environment:
  PYQUANT_SKIP_KERNELS=1      build no code objects (a CPU-only wheel)
  PYQUANT_REQUIRE_KERNELS=1   fail instead of warning when a compiler is missing or a build fails
  PYQUANT_KERNEL_ARCHS=...    only these architectures (comma-separated: gfx942,gfx1100,sm_90 ...)
  HIP_CLANG, ROCM_PATH, NVCC, CUDA_HOME   which compilers (see hsaco/README.md)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_with_kernels(build_py):
    """build_py, then the code objects (hsaco/build.py) into <build_lib>/pyquant/kernels."""

    def run(self) -> None:
        super().run()
        if os.environ.get("PYQUANT_SKIP_KERNELS"):
            self.announce("PYQUANT_SKIP_KERNELS set: no GPU code objects in this build", level=2)
            return
        script = ROOT / "hsaco" / "build.py"
        if not script.exists():
            self.warn("hsaco/build.py not found: no GPU code objects in this build")
            return
        out = Path(self.build_lib) / "pyquant" / "kernels"
        if self._fresh(out):
            self.announce(f"code objects in {out} match the sources", level=2)
            return
        cmd = [sys.executable, str(script), "--out", str(out)]
        archs = os.environ.get("PYQUANT_KERNEL_ARCHS")
        if archs:
            cmd += ["--arch", archs]
        self.announce("building GPU code objects: " + " ".join(cmd), level=2)
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:
            msg = (f"hsaco/build.py exited with {rc}: the wheel has no (or not all) GPU code objects; "
                   "install clang-22 + lld-22 (AMD) and/or nvcc (NVIDIA), or see hsaco/README.md")
            if os.environ.get("PYQUANT_REQUIRE_KERNELS"):
                raise SystemExit(msg)
            self.warn(msg)

    @staticmethod
    def _fresh(out: Path) -> bool:
        """The objects copied from the source tree (package data) were built from these sources."""
        try:
            manifest = json.loads((out / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        # codeobjects.py is standard-library only; loaded by path (the package needs numpy, absent here)
        spec = importlib.util.spec_from_file_location("_pq_codeobjects", ROOT / "pyquant" / "device" / "codeobjects.py")
        co = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = co
        spec.loader.exec_module(co)
        return manifest.get("source_hash") == co.source_hash(ROOT / "hsaco") and all(
            (out / e["file"]).exists() for e in manifest.get("objects", {}).values())


setup(cmdclass={"build_py": build_py_with_kernels})
