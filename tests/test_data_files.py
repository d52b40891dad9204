"""The labelled data: valid against the taxonomy, held-out and calibration sets kept apart from
training, and the shipped model trained on exactly the files in ``data/labels/``."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.config import DEFAULT_MODEL
from pipeline.model_store import load_categories, read_card, read_labels, sha256_file, trained_on

REPO_ROOT = Path(__file__).resolve().parent.parent
LABELS = sorted((REPO_ROOT / "data" / "labels").glob("*.jsonl"))
EVAL = sorted((REPO_ROOT / "data" / "eval").glob("*.jsonl"))
CALIBRATION = sorted((REPO_ROOT / "data" / "calibration").glob("*.jsonl"))
OUTSIDE = sorted((REPO_ROOT / "data" / "outside").glob("*.jsonl"))
HELD_OUT = EVAL + CALIBRATION
NEAR = 0.45  # character 4-gram Jaccard of two headlines: at or above, the same story reworded


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _grams(text: str, n: int = 4) -> frozenset[str]:
    text = re.sub(r"\W+", " ", text.casefold()).strip()
    return frozenset(text[i:i + n] for i in range(max(1, len(text) - n + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def test_near_duplicate_measure_separates_reworded_from_different_stories() -> None:
    same = jaccard(_grams("Trust held board meetings in private for two years"),
                   _grams("Trust held board meetings in private for 18 months"))
    other = jaccard(_grams("Trust held board meetings in private for two years"),
                    _grams("Ambulance handover delays hit record in the North West"))
    assert same >= NEAR > other


@pytest.mark.parametrize("path", LABELS + HELD_OUT, ids=lambda p: p.name)
def test_every_file_is_valid_against_the_taxonomy(path: Path) -> None:
    categories = list(load_categories())
    data = read_labels([path], categories=categories)  # raises naming file and line otherwise
    assert data.items and data.duplicates == 0
    for row in _rows(path):
        assert list(row) == ["headline", "standfirst", "category"], f"{path.name}: {row}"


@pytest.mark.parametrize("path", HELD_OUT, ids=lambda p: p.name)
def test_evaluation_sets_share_no_story_with_the_training_files(path: Path) -> None:
    """A held-out figure means nothing if the same story, reworded, is also a training example."""
    training = [(p.name, r["headline"], _grams(r["headline"])) for p in LABELS for r in _rows(p)]
    close = []
    for row in _rows(path):
        grams = _grams(row["headline"])
        close += [(row["headline"], name, headline) for name, headline, other in training
                  if jaccard(grams, other) >= NEAR]
    assert not close, f"{len(close)} near-duplicates, e.g. {close[:3]}"


def test_held_out_sets_do_not_share_stories_with_each_other() -> None:
    """The calibration sets tune the temperature; the eval set must be new to them as well."""
    calibration = [(p.name, r["headline"], _grams(r["headline"])) for p in CALIBRATION for r in _rows(p)]
    close = [(row["headline"], name, headline) for p in EVAL for row in _rows(p)
             for name, headline, other in calibration if jaccard(_grams(row["headline"]), other) >= NEAR]
    assert not close, f"{len(close)} near-duplicates, e.g. {close[:3]}"


def test_off_topic_examples_are_unlabelled_and_not_nhs_examples() -> None:
    """The scope model's negatives: no category, and none of them also an NHS example (they may
    share stock phrases such as "chief executive to step down": that is what they are for)."""
    nhs = {" ".join(r["headline"].casefold().split()) for p in LABELS + HELD_OUT for r in _rows(p)}
    rows = [r for p in OUTSIDE for r in _rows(p)]
    assert len(rows) >= 500 and all("category" not in r and r["headline"].strip() for r in rows)
    assert not [r["headline"] for r in rows if " ".join(r["headline"].casefold().split()) in nhs]


def test_evaluation_sets_are_balanced_across_all_categories() -> None:
    categories = set(load_categories())
    for path in HELD_OUT:
        counts: dict[str, int] = {}
        for row in _rows(path):
            counts[row["category"]] = counts.get(row["category"], 0) + 1
        assert set(counts) == categories, path.name
        assert max(counts.values()) <= 1.5 * min(counts.values()), (path.name, counts)


def test_shipped_model_was_trained_on_exactly_the_labels_files() -> None:
    """Adding or editing a labels file without retraining (``hsj-pipeline train``) fails here."""
    assert trained_on(read_card(DEFAULT_MODEL), LABELS)


def test_shipped_model_was_calibrated_on_the_calibration_files_only() -> None:
    card = read_card(DEFAULT_MODEL)
    names = {f["name"] for f in card["calibration"]["files"]}
    assert names == {p.name for p in CALIBRATION}
    assert {f["name"]: f["sha256"] for f in card["calibration"]["files"]} == \
        {p.name: sha256_file(p) for p in CALIBRATION}
    assert not names & {p.name for p in EVAL}
    assert {f["name"] for f in card["scope"]["files"]} == {p.name for p in OUTSIDE}


def test_shipped_model_card_records_every_evaluation_set() -> None:
    card = read_card(DEFAULT_MODEL)
    recorded = {entry["file"] for entry in card.get("heldout", {}).get("sets", {}).values()}
    for path in HELD_OUT:
        assert path.name in recorded, f"{path.name} not scored in the card (benchmarks/tag_heldout.py --record)"
