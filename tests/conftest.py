"""Shared fixtures: the bundled sample pages and the optional ../shared benchmark corpora."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run by default, so a test run (and CI) is a
# function of the code: a run never fails on one draw and passes on the next. To search further,
# HYPOTHESIS_PROFILE=explore draws afresh each run (add --hypothesis-seed=N to replay one).
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
SHARED_DIR = Path(os.environ.get("HSJ_SHARED", REPO_ROOT.parent / "shared"))
AG_NEWS_CSV = SHARED_DIR / "benchmarks" / "ag_news" / "test.csv"


@pytest.fixture(scope="session")
def sample_pages() -> list[Path]:
    """The five vendored seed pages, in name order."""
    pages = sorted(SAMPLES_DIR.glob("*.txt"))
    assert len(pages) == 5
    return pages


@pytest.fixture(scope="session")
def ag_news_csv() -> Path:
    """Path to the AG News test split; skips the test when ../shared is not beside the repo."""
    if not AG_NEWS_CSV.is_file():
        pytest.skip(f"AG News not found at {AG_NEWS_CSV}")
    return AG_NEWS_CSV


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped classifier. It must load: a stale model is a failure to fix (retrain), not to hide."""
    from pipeline.config import DEFAULT_MODEL
    from pipeline.model_store import load_classifier

    load_classifier(DEFAULT_MODEL)  # raises ModelError with the fix if it is stale or tampered with
    return DEFAULT_MODEL

