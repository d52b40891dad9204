"""Build hook (the project is configured in pyproject.toml).

Why: the package reads its configs, shipped model and bundled data from the checkout beside it
(``configs/``, ``models/``, ``data/``). A wheel -- ``pip install .`` without ``-e``, or a built
wheel copied elsewhere -- has no checkout, so its build copies those directories into the package
as ``pipeline/_bundled/``, where ``pipeline.config`` looks first. Editable installs run from the
checkout and copy nothing.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("configs", "models", "data/samples", "data/labels", "data/eval", "data/calibration",
            "data/outside")


class BuildWithData(build_py):
    """``build_py`` plus the checkout's data directories under ``pipeline/_bundled``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pipeline" / "_bundled"
        for relative in BUNDLED:
            source = ROOT / relative
            if source.is_dir():
                shutil.copytree(source, target / relative, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
