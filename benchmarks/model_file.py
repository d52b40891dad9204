"""Size, save and load time of the classifier file: skops (shipped) against a joblib pickle.

The shipped model (``models/category_classifier.skops``) is loaded, then saved both ways and
loaded back, each timed as the best of ``--repeats``; loading goes through
:func:`pipeline.model_store.load_classifier` (card, SHA-256, type allowlist and probe checks
included), so the figures are what a user pays. Usage::

    python benchmarks/model_file.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipeline.config import DEFAULT_MODEL  # noqa: E402
from pipeline.model_store import load_classifier, save_classifier  # noqa: E402


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    clf = load_classifier(DEFAULT_MODEL)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("skops", "joblib"):
            path = Path(tmp) / f"m.{fmt}"
            save = best(lambda: save_classifier(clf, path), args.repeats)
            load = best(lambda: load_classifier(path, trust_pickle=fmt == "joblib"), args.repeats)
            rows[fmt] = (path.stat().st_size, save, load)
    print(f"classifier: {clf.n_features_} features, {len(clf.classes_)} classes "
          f"(best of {args.repeats})")
    print("| format | size | save | load (verified) |")
    print("|---|---|---|---|")
    for fmt, (size, save, load) in rows.items():
        print(f"| {fmt} | {size / 1e6:.2f} MB | {save:.2f} s | {load:.2f} s |")
    s, j = rows["skops"], rows["joblib"]
    print(f"skops / joblib: size {s[0] / j[0]:.2f}x, save {s[1] / j[1]:.2f}x, load {s[2] / j[2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
