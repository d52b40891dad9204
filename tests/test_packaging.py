"""A built wheel (``pip install .`` without ``-e``) carries the configs, the shipped model and the
bundled data inside the package (setup.py), where pipeline.config finds them away from a checkout."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_carries_configs_model_and_data(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "No matching distribution" in built.stderr + built.stdout:
        pytest.skip("no package index to build with")  # the build needs setuptools from the index
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("hsj_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for relative in ("configs/default.toml", "configs/categories.toml", "configs/normalise.toml",
                     "models/category_classifier.skops", "models/category_classifier.json"):
        assert f"pipeline/_bundled/{relative}" in names
    for folder in ("samples", "labels"):
        here = {p.name for p in (ROOT / "data" / folder).iterdir() if p.is_file()}
        assert here and {f"pipeline/_bundled/data/{folder}/{n}" for n in here} <= names


def test_a_bundled_directory_is_where_the_package_looks(tmp_path: Path) -> None:
    """pipeline.config prefers pipeline/_bundled when it exists (an installed wheel)."""
    package = tmp_path / "pipeline"
    package.mkdir()
    (package / "_bundled").mkdir()
    source = (ROOT / "pipeline" / "config.py").read_text(encoding="utf-8")
    (package / "config.py").write_text(source, encoding="utf-8")
    (package / "errors.py").write_text((ROOT / "pipeline" / "errors.py").read_text(encoding="utf-8"), encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    code = "import pipeline.config as c; print(c.CONFIG_DIR); print(c.DEFAULT_MODEL)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": ""}).stdout.split()
    assert out == [str(package / "_bundled" / "configs"), str(package / "_bundled" / "models" / "category_classifier.skops")]
