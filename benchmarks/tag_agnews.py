"""AG News benchmark of the tag stage's estimator against a plain scikit-learn baseline.

Both models are trained on AG News's own 4 labels and scored on the SAME stratified folds
(fixed seed): ours is :class:`pipeline.tag.CategoryClassifier` (calibrated on its own training folds),
the baseline is TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
+ LinearSVC. Prints accuracy and macro-F1 (mean ± std over folds), fit/predict times and the
ratios. Usage::

    python benchmarks/tag_agnews.py [--csv PATH] [--folds 5] [--limit N] [--seed 0]

The CSV has no header: class index (1-4), title, description.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipeline.tag import CategoryClassifier  # noqa: E402

SHARED = Path(os.environ.get("HSJ_SHARED", REPO_ROOT.parent / "shared"))
DEFAULT_CSV = SHARED / "benchmarks" / "ag_news" / "test.csv"


def read_ag_news(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows as (title -> headline, description -> standfirst) items and their class labels."""
    items, labels = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 3:
                continue
            labels.append(row[0])
            items.append({"headline": row[1], "standfirst": row[2]})
    return items, labels


def baseline_text(item: dict[str, str]) -> str:
    """The baseline sees the same text as ours, joined the plain way."""
    return f"{item['headline']} {item['standfirst']}"


def compare(items: list[dict[str, str]], labels: list[str], *, folds: int = 5,
            seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Fit and score both models on the same stratified folds; per-fold metrics and times."""
    y = np.asarray(labels, dtype=object)
    texts = [baseline_text(i) for i in items]
    ours = CategoryClassifier(random_state=seed)
    base = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                         LinearSVC(random_state=seed))
    out: dict[str, dict[str, list[float]]] = {
        name: {"accuracy": [], "macro_f1": [], "fit_s": [], "predict_s": []}
        for name in ("ours", "baseline")}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        for name, model, X in (("ours", ours, items), ("baseline", base, texts)):
            model = clone(model)
            t0 = time.perf_counter()
            model.fit([X[i] for i in train], y[train])
            t1 = time.perf_counter()
            pred = model.predict([X[i] for i in test])
            t2 = time.perf_counter()
            out[name]["accuracy"].append(accuracy_score(y[test], pred))
            out[name]["macro_f1"].append(f1_score(y[test], pred, average="macro"))
            out[name]["fit_s"].append(t1 - t0)
            out[name]["predict_s"].append(t2 - t1)
    return out


def subset(items: list, labels: list[str], n: int, seed: int = 0) -> tuple[list, list[str]]:
    """A stratified subset of ``n`` rows (for quick runs)."""
    if n >= len(labels):
        return items, labels
    idx = np.arange(len(labels))
    keep, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    keep = sorted(keep)
    return [items[i] for i in keep], [labels[i] for i in keep]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="stratified subset size (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"AG News not found at {args.csv}", file=sys.stderr)
        return 2
    items, labels = read_ag_news(args.csv)
    if args.limit:
        items, labels = subset(items, labels, args.limit, args.seed)
    print(f"AG News: {len(labels)} rows, {len(set(labels))} classes, {args.folds}-fold stratified "
          f"CV, seed {args.seed}")
    result = compare(items, labels, folds=args.folds, seed=args.seed)
    for name in ("ours", "baseline"):
        r = result[name]
        print(f"{name:9s} accuracy {np.mean(r['accuracy']):.4f} ± {np.std(r['accuracy']):.4f}  "
              f"macro-F1 {np.mean(r['macro_f1']):.4f} ± {np.std(r['macro_f1']):.4f}  "
              f"fit {np.mean(r['fit_s']):.2f} s/fold  predict {np.mean(r['predict_s']):.2f} s/fold")
    o, b = result["ours"], result["baseline"]
    print(f"ratio ours/baseline: accuracy {np.mean(o['accuracy']) / np.mean(b['accuracy']):.4f}, "
          f"macro-F1 {np.mean(o['macro_f1']) / np.mean(b['macro_f1']):.4f}, "
          f"fit time {np.mean(o['fit_s']) / np.mean(b['fit_s']):.1f}x, "
          f"predict time {np.mean(o['predict_s']) / np.mean(b['predict_s']):.1f}x")
    better = all(np.mean(o[k]) >= np.mean(b[k]) for k in ("accuracy", "macro_f1"))
    print("ours >= baseline on accuracy and macro-F1:", "yes" if better else "NO")
    return 0 if better else 1


if __name__ == "__main__":
    raise SystemExit(main())
