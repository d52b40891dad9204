"""Clean-stage throughput (texts/second) at stated sizes, beside scikit-learn's regex tokenizer.

Texts are AG News titles and descriptions (from ``../shared``, never committed) with a numbered
variation word appended so every text is distinct (the cache cannot help). Each distinct text is
cleaned once; ``--jobs`` > 1 uses worker processes that return token lists only. Besides wall
time it prints this process's CPU seconds (steadier on a shared machine; worker processes'
CPU is not included).

    python benchmarks/clean_throughput.py --sizes 10000 100000 --jobs 1 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def texts_of(size: int, data: Path) -> list[str]:
    from cluster_agnews import load_ag_news

    titles, descriptions, _ = load_ag_news(data)
    base = titles + descriptions
    return [f"{base[i % len(base)]} variant{i // len(base)}" for i in range(size)]


def main(argv: list[str] | None = None) -> int:
    from cluster_agnews import DEFAULT_DATA
    from sklearn.feature_extraction.text import CountVectorizer

    from pipeline.clean import TextCleaner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    for size in args.sizes:
        texts = texts_of(size, args.data)
        t0 = time.perf_counter()
        analyzer = CountVectorizer().build_analyzer()
        for text in texts:
            analyzer(text)
        base = time.perf_counter() - t0
        for jobs in args.jobs:
            t0, c0 = time.perf_counter(), time.process_time()
            tokens = TextCleaner().tokens(texts, n_jobs=jobs)
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{size:>8} texts  jobs={jobs}  {took:6.1f}s ({cpu:.1f}s CPU here)  {size / took:8.0f} texts/s  "
                  f"(sklearn regex analyzer {size / base:8.0f} texts/s, ratio x{took / base:.1f})  "
                  f"tokens {sum(map(len, tokens))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
