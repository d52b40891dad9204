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

``--record`` also writes the shipped model's figures into its card (``heldout`` in
``models/category_classifier.json``); it refuses if the shipped model was not trained on the
current labels files (retrain first).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipeline.config import DEFAULT_MODEL, load_config  # noqa: E402
from pipeline.model_store import (load_categories, load_classifier, read_card, read_labels,  # noqa: E402
                                  record_heldout, sha256_file)
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


def _scores(truth: list[str], pred) -> tuple[float, float]:
    return f1_score(truth, list(pred), average="macro"), accuracy_score(truth, list(pred))


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

    ours = CategoryClassifier(random_state=args.seed).fit(everything.items, everything.labels)
    base = baseline(args.seed).fit([_text(i) for i in everything.items], everything.labels)
    print(f"trained on {len(everything.labels)} labelled examples ({len(LABELS)} files); "
          f"uncertain below {threshold}")
    print(f"{'evaluation':<42} {'n':>4} {'ours F1':>8} {'acc':>6} {'base F1':>8} {'acc':>6} "
          f"{'flagged':>8} {'errors':>7}")
    records: dict[str, tuple[dict, Path]] = {}
    rows = [(p.stem, read_labels([p], categories=categories), p) for p in EVAL]
    for name, data, path in rows:
        for suffix, items in (("", data.items), ("_headline_only", headline_only(data.items))):
            proba = ours.predict_proba(items)
            pred = ours.classes_[proba.argmax(axis=1)]
            confident = proba.max(axis=1) >= threshold
            wrong = pred != np.asarray(data.labels, dtype=object)
            f1, acc = _scores(data.labels, pred)
            bf1, bacc = _scores(data.labels, base.predict([_text(i) for i in items]))
            label = name + suffix
            print(f"{label:<42} {len(items):>4} {f1:>8.3f} {acc:>6.3f} {bf1:>8.3f} {bacc:>6.3f} "
                  f"{int((~confident).sum()):>8} {int((wrong & ~confident).sum()):>3}/{int(wrong.sum()):<3}")
            records[label] = (evaluate_predictions(data.labels, [str(p) for p in pred],
                                                   [str(c) for c in ours.classes_], proba), path)

    ours_w = CategoryClassifier(random_state=args.seed).fit(written.items, written.labels)
    base_w = baseline(args.seed).fit([_text(i) for i in written.items], written.labels)
    proba = ours_w.predict_proba(seeds.items)
    pred = ours_w.classes_[proba.argmax(axis=1)]
    confident = proba.max(axis=1) >= threshold
    wrong = pred != np.asarray(seeds.labels, dtype=object)
    f1, acc = _scores(seeds.labels, pred)
    bf1, bacc = _scores(seeds.labels, base_w.predict([_text(i) for i in seeds.items]))
    print(f"{'written only -> real seed headlines':<42} {len(seeds.labels):>4} {f1:>8.3f} {acc:>6.3f} "
          f"{bf1:>8.3f} {bacc:>6.3f} {int((~confident).sum()):>8} "
          f"{int((wrong & ~confident).sum()):>3}/{int(wrong.sum()):<3}")
    print("flagged: uncertain items; errors: wrong among the flagged / all wrong")

    if args.record:
        card = read_card(DEFAULT_MODEL)
        trained = {f["name"]: f["sha256"] for f in card["training_data"]["files"]}
        if trained != {p.name: sha256_file(p) for p in LABELS}:
            print("the shipped model was not trained on the current labels files: "
                  "run `hsj-pipeline train` first", file=sys.stderr)
            return 1
        shipped = load_classifier(DEFAULT_MODEL)
        for label, (_, path) in records.items():
            data = read_labels([path], categories=categories)
            items = headline_only(data.items) if label.endswith("_headline_only") else data.items
            proba = shipped.predict_proba(items)
            pred = [str(shipped.classes_[i]) for i in proba.argmax(axis=1)]
            metrics = evaluate_predictions(data.labels, pred, [str(c) for c in shipped.classes_], proba)
            record_heldout(DEFAULT_MODEL, label, metrics, test_file=path)
        print(f"recorded {len(records)} held-out figures in {DEFAULT_MODEL.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
