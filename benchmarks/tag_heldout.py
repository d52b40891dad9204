"""Held-out quality of the tagger on NHS headlines it never saw, beside plain scikit-learn.

Scores, on every evaluation file in ``data/eval/`` (never trained on; ``tests/test_data_files.py``
checks that no training headline is a reworded copy of one), with and without standfirsts:

- ours: :class:`pipeline.tag.CategoryClassifier` trained on every ``data/labels/*.jsonl`` (what
  ``hsj-pipeline train`` ships), and the ``uncertain`` flags at ``[tag] min_confidence``;
- baseline: ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` + ``LinearSVC(class_weight=
  "balanced")`` trained on the same labels and text;
- transfer: both trained on the ``written_*`` files only and scored on the 79 real seed headlines.

Usage::

    python benchmarks/tag_heldout.py [--seed 0] [--record]

``--record`` scores the shipped artefact itself (training is deterministic, so the figures are
the same) and writes them into its card (``heldout`` in ``models/category_classifier.json``); it
refuses if the shipped model was not trained on the current labels files (retrain first).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipeline.config import DEFAULT_MODEL, load_config  # noqa: E402
from pipeline.model_store import (load_categories, load_classifier, read_card, read_labels,  # noqa: E402
                                  record_heldout, trained_on)
from pipeline.tag import CategoryClassifier, evaluate_predictions  # noqa: E402

LABELS = sorted((REPO_ROOT / "data" / "labels").glob("*.jsonl"))
EVAL = sorted((REPO_ROOT / "data" / "eval").glob("*.jsonl"))
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"


def _text(item: dict) -> str:
    return f"{item['headline']} {item.get('standfirst') or ''}".strip()


def baseline(seed: int):
    """Plain scikit-learn: word 1-2 grams, sublinear TF-IDF, class-balanced linear SVM."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LinearSVC(class_weight="balanced", random_state=seed))


def headline_only(items: list[dict]) -> list[dict]:
    return [{"headline": i["headline"], "standfirst": None} for i in items]


def score_row(label: str, items: list[dict], truth: list[str], ours: CategoryClassifier, base,
              threshold: float) -> dict:
    """Print one table row (ours, baseline, uncertain flags); return ours' metrics."""
    classes = [str(c) for c in ours.classes_]
    proba = ours.predict_proba(items)
    pred = [classes[i] for i in proba.argmax(axis=1)]
    metrics = evaluate_predictions(truth, pred, classes, proba)
    plain = evaluate_predictions(truth, base.predict([_text(i) for i in items]), classes)
    flagged = proba.max(axis=1) < threshold
    wrong = np.asarray(pred, dtype=object) != np.asarray(truth, dtype=object)
    print(f"{label:<42} {len(items):>4} {metrics['macro_f1']:>8.3f} {metrics['accuracy']:>6.3f} "
          f"{plain['macro_f1']:>8.3f} {plain['accuracy']:>6.3f} {int(flagged.sum()):>8} "
          f"{int((wrong & flagged).sum()):>3}/{int(wrong.sum()):<3}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="write the figures into the model card")
    args = parser.parse_args(argv)

    categories = list(load_categories())
    threshold = load_config().tag.min_confidence
    everything = read_labels(LABELS, categories=categories)
    written = read_labels([p for p in LABELS if p.name.startswith("written_")], categories=categories)
    seeds = read_labels([SEEDS], categories=categories)

    if args.record:  # the figures go beside the shipped artefact, so they must be its own
        if not trained_on(read_card(DEFAULT_MODEL), LABELS):
            print("the shipped model was not trained on the current labels files: run "
                  "`hsj-pipeline train --out models/category_classifier.joblib --force` first",
                  file=sys.stderr)
            return 1
        ours = load_classifier(DEFAULT_MODEL)
    else:
        ours = CategoryClassifier(random_state=args.seed).fit(everything.items, everything.labels)
    base = baseline(args.seed).fit([_text(i) for i in everything.items], everything.labels)
    print(f"trained on {len(everything.labels)} labelled examples ({len(LABELS)} files); "
          f"uncertain below {threshold}")
    print(f"{'evaluation':<42} {'n':>4} {'ours F1':>8} {'acc':>6} {'base F1':>8} {'acc':>6} "
          f"{'flagged':>8} {'errors':>7}")
    records: dict[str, tuple[dict, Path]] = {}
    for path in EVAL:
        data = read_labels([path], categories=categories)
        for suffix, items in (("", data.items), ("_headline_only", headline_only(data.items))):
            label = path.stem + suffix
            records[label] = (score_row(label, items, data.labels, ours, base, threshold), path)

    ours_w = CategoryClassifier(random_state=args.seed).fit(written.items, written.labels)
    base_w = baseline(args.seed).fit([_text(i) for i in written.items], written.labels)
    score_row("written only -> real seed headlines", seeds.items, seeds.labels, ours_w, base_w, threshold)
    print("flagged: uncertain items; errors: wrong among the flagged / all wrong")

    if args.record:
        for label, (metrics, path) in records.items():
            record_heldout(DEFAULT_MODEL, label, metrics, test_file=path)
        print(f"recorded {len(records)} held-out figures in {DEFAULT_MODEL.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
