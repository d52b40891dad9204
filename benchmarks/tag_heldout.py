"""Held-out quality of the tagger: the ablation, calibration and out-of-scope figures.

Everything is scored on text no model here was trained on:

- ``data/eval/*.jsonl``: real-style held-out headlines, never used to fit anything (the main
  figure; ``tests/test_data_files.py`` checks no training headline is a reworded copy);
- ``data/calibration/*.jsonl``: held-out sets the shipped model's temperature and
  ``min_confidence_`` are fitted on; their figures for the calibrated rows are marked ``(cal)``;
- the 79 real seed headlines, with every model trained on the ``written_*`` files only;
- AG News (``../shared/benchmarks/ag_news/``) for the out-of-scope rates (World and Sports rows
  must be flagged; it is never trained on).

The ablation adds one block at a time, from the plain TF-IDF LinearSVC (the bar to beat) to the
shipped configuration, each trained on the same ``data/labels`` files::

    python benchmarks/tag_heldout.py [--seed 0] [--record]

``--record`` scores the shipped artefact itself and writes the figures into its card (refused
if the shipped model was not trained on the current labels files).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipeline.config import DEFAULT_MODEL  # noqa: E402
from pipeline.model_store import (load_categories, load_classifier, read_card, read_labels,  # noqa: E402
                                  trained_on, update_card)
from pipeline.tag import (CategoryClassifier, evaluate_predictions, min_confidence_of,  # noqa: E402
                          reliability_table, tag_columns)

LABELS = sorted((REPO_ROOT / "data" / "labels").glob("*.jsonl"))
EVAL = sorted((REPO_ROOT / "data" / "eval").glob("*.jsonl"))
CALIBRATION = sorted((REPO_ROOT / "data" / "calibration").glob("*.jsonl"))
OUTSIDE = sorted((REPO_ROOT / "data" / "outside").glob("*.jsonl"))
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"
SHARED = Path(os.environ.get("HSJ_SHARED", REPO_ROOT.parent / "shared"))
AG_NEWS = SHARED / "benchmarks" / "ag_news" / "test.csv"
AG_CLASSES = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


class Plain:
    """The bar: TF-IDF word 1-2 grams (sublinear) + class-balanced LinearSVC over headline + standfirst."""

    def __init__(self, seed: int) -> None:
        self.model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                   LinearSVC(class_weight="balanced", random_state=seed))

    @staticmethod
    def _texts(items: list[dict]) -> list[str]:
        return [f"{i['headline']} {i.get('standfirst') or ''}".strip() for i in items]

    def fit(self, items: list[dict], labels: list[str], **_: Any) -> "Plain":
        self.model.fit(self._texts(items), labels)
        return self

    def predict(self, items: list[dict]) -> np.ndarray:
        return self.model.predict(self._texts(items))


class WithLexicon(CategoryClassifier):
    """The ablation's lexicon block: counts of each category's terms from configs/categories.toml
    (the block the previous model had), added to the shipped features. Benchmark only."""

    def _features_of(self, parts: Any, *, fit: bool = False) -> sp.csr_matrix:
        base = super()._features_of(parts, fit=fit)
        if fit:
            terms = sorted({t.lower() for c in load_categories().values() for t in c["lexicon"]})
            self.lexicon_vectoriser_ = TfidfVectorizer(vocabulary=terms, ngram_range=(1, 4),
                                                       sublinear_tf=True, use_idf=False).fit(["x"])
        whole, _ = self._texts(parts)
        return sp.hstack([base, 0.25 * self.lexicon_vectoriser_.transform(whole)], format="csr")


def ablation_models(seed: int) -> list[tuple[str, Any, bool]]:
    """(name, unfitted model, calibrated on held-out text) from the bar to the shipped model."""
    return [
        ("plain TF-IDF word 1-2 + LinearSVC (the bar)", Plain(seed), False),
        ("word 1-2 on normalised text, headline+standfirst",
         CategoryClassifier(char_ngram_range=None, headline_weight=0.0, random_state=seed), False),
        ("+ char_wb 2-5", CategoryClassifier(headline_weight=0.0, random_state=seed), False),
        ("+ headline weighted 0.7 (shipped features)", CategoryClassifier(random_state=seed), False),
        ("+ lexicon counts (dropped)", WithLexicon(random_state=seed), False),
        ("shipped features, calibrated on held-out text", CategoryClassifier(random_state=seed), True),
    ]


def headline_only(items: list[dict]) -> list[dict]:
    return [{"headline": i["headline"], "standfirst": None} for i in items]


def read_ag_news(path: Path) -> tuple[list[dict], list[str]]:
    import csv

    items, labels = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 3:
                items.append({"headline": row[1], "standfirst": row[2]})
                labels.append(AG_CLASSES.get(row[0], row[0]))
    return items, labels


def scores(model: Any, items: list[dict], truth: list[str]) -> dict[str, Any]:
    """Metrics of a model (with calibrated probabilities when it has them)."""
    if isinstance(model, CategoryClassifier):
        proba = model.predict_proba(items)
        classes = [str(c) for c in model.classes_]
        pred = [classes[i] for i in proba.argmax(axis=1)]
        return evaluate_predictions(truth, pred, classes, proba)
    return evaluate_predictions(truth, [str(p) for p in model.predict(items)], sorted(set(truth)))


def min_f1(metrics: dict[str, Any]) -> float:
    return min(v["f1"] for v in metrics["per_class"].values())


def print_ablation(seed: int, categories: list[str]) -> list[dict[str, Any]]:
    """Train every ablation row on data/labels; score it on each held-out set."""
    train = read_labels(LABELS, categories=categories)
    written = read_labels([p for p in LABELS if p.name.startswith("written_")], categories=categories)
    seeds = read_labels([SEEDS], categories=categories)
    cal = read_labels(CALIBRATION, categories=categories) if CALIBRATION else None
    sets = [(p.stem, read_labels([p], categories=categories)) for p in EVAL + CALIBRATION]
    print(f"\n## Ablation (trained on {len(train.labels)} labels; macro-F1 / min class F1 / ECE)")
    header = "| model | " + " | ".join(name for name, _ in sets) + " | written -> seeds |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rows = []
    for name, model, calibrated in ablation_models(seed):
        fit_kw = ({"X_calibration": cal.items, "y_calibration": cal.labels}
                  if calibrated and cal is not None else {})
        model.fit(train.items, train.labels, **fit_kw)
        cells, row = [], {"model": name}
        for set_name, data in sets:
            m = scores(model, data.items, data.labels)
            mark = " (cal)" if calibrated and set_name in {p.stem for p in CALIBRATION} else ""
            ece = f" / {m['ece']:.3f}" if "ece" in m else ""
            cells.append(f"{m['macro_f1']:.3f} / {min_f1(m):.2f}{ece}{mark}")
            row[set_name] = {"macro_f1": m["macro_f1"], "min_f1": min_f1(m), "ece": m.get("ece")}
        transfer = type(model)(**model.get_params()) if isinstance(model, CategoryClassifier) else Plain(seed)
        transfer.fit(written.items, written.labels, **fit_kw)
        m = scores(transfer, seeds.items, seeds.labels)
        cells.append(f"{m['macro_f1']:.3f} / {min_f1(m):.2f}")
        row["written_to_seeds"] = {"macro_f1": m["macro_f1"], "min_f1": min_f1(m)}
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        rows.append(row)
    return rows


def shipped_figures(clf: CategoryClassifier, categories: list[str], seed: int) -> dict[str, Any]:
    """Per held-out set: metrics, uncertain flags, reliability; the out-of-scope rates."""
    figures: dict[str, Any] = {"sets": {}, "out_of_scope": {}}
    threshold = min_confidence_of(clf, None)
    print(f"\n## The model (temperature {clf.temperature_}, min_confidence {threshold}, "
          f"scope threshold {clf.scope_threshold})")
    print("| set | n | macro-F1 | accuracy | min class F1 | ECE | mean conf | flagged | errors flagged |"
          " out of scope | plain SVM macro-F1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    train = read_labels(LABELS, categories=categories)
    plain = Plain(seed).fit(train.items, train.labels)
    for path in EVAL + CALIBRATION:
        data = read_labels([path], categories=categories)
        for suffix, items in (("", data.items), (" (headline only)", headline_only(data.items))):
            m = scores(clf, items, data.labels)
            cols = tag_columns(items, clf)
            proba_pred = np.asarray([max(range(len(clf.classes_)), key=lambda k: r[k]) for r in cols.rounded])
            pred = np.asarray([str(clf.classes_[k]) for k in proba_pred], dtype=object)
            wrong = pred != np.asarray(data.labels, dtype=object)
            flagged = np.asarray(cols.uncertain)
            outside = np.asarray([r == "out_of_scope" for r in cols.reasons])
            base = evaluate_predictions(data.labels, plain.predict(items), categories)
            cal = " (cal)" if path in CALIBRATION else ""
            print(f"| {path.stem}{suffix}{cal} | {m['n']} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} | "
                  f"{min_f1(m):.2f} | {m['ece']:.3f} | {m['mean_confidence']:.3f} | {int(flagged.sum())} | "
                  f"{int((wrong & flagged).sum())}/{int(wrong.sum())} | {outside.mean():.1%} | "
                  f"{base['macro_f1']:.3f} |")
            key = path.stem + ("_headline_only" if suffix else "")
            figures["sets"][key] = {
                "file": path.name, "role": "calibration" if cal else "held-out", "n": m["n"],
                "macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "min_class_f1": min_f1(m),
                "f1_per_class": {c: v["f1"] for c, v in m["per_class"].items()},
                "ece": m["ece"], "mean_confidence": m["mean_confidence"], "log_loss": m["log_loss"],
                "flagged": int(flagged.sum()), "errors": int(wrong.sum()),
                "errors_flagged": int((wrong & flagged).sum()),
                "out_of_scope_rate": round(float(outside.mean()), 4),
                "plain_svm_macro_f1": base["macro_f1"],
                "reliability": reliability_table(np.asarray(cols.confidences), ~wrong) if not suffix else None,
            }
    for path in EVAL:
        rel = figures["sets"][path.stem]["reliability"]
        print(f"\nReliability on {path.stem} (10 bins; only non-empty ones):")
        print("| confidence | n | mean confidence | accuracy |")
        print("|---|---|---|---|")
        for row in rel:
            print(f"| {row['low']:.1f}-{row['high']:.1f} | {row['n']} | {row['confidence']:.3f} | "
                  f"{row['accuracy']:.3f} |")
    if AG_NEWS.is_file():
        items, labels = read_ag_news(AG_NEWS)
        scope = clf.scope_proba(items)
        if scope is not None:
            outside = scope < clf.scope_threshold
            print("\n## Out of scope (flagged share)")
            print("| text | n | flagged out of scope |")
            print("|---|---|---|")
            for cls in AG_CLASSES.values():
                mask = np.asarray(labels) == cls
                rate = float(outside[mask].mean())
                figures["out_of_scope"][f"ag_news_{cls}"] = {"n": int(mask.sum()), "rate": round(rate, 4)}
                print(f"| AG News {cls} | {int(mask.sum())} | {rate:.1%} |")
            both = np.isin(np.asarray(labels), ["World", "Sports"])
            rate = float(outside[both].mean())
            figures["out_of_scope"]["ag_news_world_and_sports"] = {"n": int(both.sum()), "rate": round(rate, 4)}
            print(f"| AG News World + Sports | {int(both.sum())} | {rate:.1%} |")
    nhs = read_labels(EVAL + CALIBRATION + [SEEDS], categories=categories)
    scope = clf.scope_proba(nhs.items)
    if scope is not None:
        rate = float((scope < clf.scope_threshold).mean())
        figures["out_of_scope"]["nhs_heldout_and_seeds"] = {"n": len(nhs.items), "rate": round(rate, 4)}
        print(f"| NHS held-out, calibration and seed headlines | {len(nhs.items)} | {rate:.1%} |")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="write the figures into the model card")
    parser.add_argument("--skip-ablation", action="store_true")
    args = parser.parse_args(argv)
    categories = list(load_categories())
    if args.record and not trained_on(read_card(DEFAULT_MODEL), LABELS):
        print("the shipped model was not trained on the current labels files: "
              "run `hsj-pipeline train --out models/category_classifier.skops --force` first", file=sys.stderr)
        return 1
    ablation = [] if args.skip_ablation else print_ablation(args.seed, categories)
    clf = load_classifier(DEFAULT_MODEL)
    figures = shipped_figures(clf, categories, args.seed)
    if args.record:
        update_card(DEFAULT_MODEL, "heldout", {**figures, "ablation": ablation})
        print(f"\nrecorded in {DEFAULT_MODEL.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
