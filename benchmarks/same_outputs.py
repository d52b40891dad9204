"""Do two checkouts write the same bytes? The proof a refactor owes: ``articles.jsonl``,
``rejects.jsonl`` and ``vectoriser.joblib`` from this checkout and another (e.g. the commit before
the refactor), on the same inputs, with the same classifier file.

Why a script and not a test: the other checkout has its own environment, and the 100k case takes
minutes. Tests check the same-bytes properties inside one checkout (``--jobs``, batch sizes,
backends); this compares two.

    git worktree add ../before af5e4ef && python3 -m venv ../before/.venv \\
        && ../before/.venv/bin/pip install -e "../before[test]"
    python benchmarks/same_outputs.py --other ../before --out /tmp/same
    python benchmarks/same_outputs.py --other ../before --out /tmp/same --cases samples,agnews,mixed

Cases (each with ``--jobs 1``, ``--jobs 2`` and the Dask backend unless ``--variants`` says less):
``samples`` the bundled pages; ``agnews`` the AG News test split (7,600 rows, read from
``../shared``); ``mixed`` pages, a ``.jsonl`` and a ``.csv`` with broken records (so
``rejects.jsonl`` is not empty); ``100k`` 100,000 generated articles
(``benchmarks/generate_corpus.py``, seed 0). The classifier is this checkout's shipped model,
copied once into ``--out`` and given to both with ``--model``, so only the code differs.

The other checkout's outputs are kept and reused on a second call (``--rerun-other`` runs them
again): its code does not change. ``--compare-only`` runs nothing and compares what is in
``--out``. Prints one Markdown table of SHA-256 prefixes (each variant's where they differ);
exits 1 if any file differs between the checkouts or between the variants of one checkout.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from run_scale import corpus_dir  # noqa: E402

SHARED = REPO.parent / "shared"
FILES = ("articles.jsonl", "rejects.jsonl", "vectoriser.joblib")
VARIANTS = {"j1": ["--jobs", "1"], "j2": ["--jobs", "2"], "dask": ["--jobs", "2", "--backend", "dask"]}
AG_NEWS_COLUMNS = ["--set", 'parse.headline_column="2"', "--set", 'parse.standfirst_column="3"']

MIXED_JSONL = """\
{"headline": "Trust names new chief executive", "standfirst": "The board confirmed the appointment."}
{"headline": "", "standfirst": "A record without a headline"}
not json at all
{"headline": "Trust names new chief executive", "standfirst": "The board confirmed the appointment."}
{"standfirst": "no headline key"}
{"headline": "ICB cuts running costs by 30 per cent", "standfirst": "Jobs at risk across the system."}
"""
MIXED_CSV = """\
headline,standfirst
Hospital misses four-hour target,A&E performance fell again in March.
,A row with an empty headline
"Unclosed quote, standfirst
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"


def _cell(by_variant: dict[str, str]) -> str:
    """One digest if every variant wrote the same bytes, else each variant's."""
    if len(set(by_variant.values())) == 1:
        return next(iter(by_variant.values()))
    return ", ".join(f"{v}: {d}" for v, d in by_variant.items())


def inputs(case: str, work: Path) -> tuple[list[str], list[str]]:
    """The paths and extra options for a case (``[]`` paths: the bundled samples)."""
    if case == "samples":
        return [], []
    if case == "agnews":
        return [str(SHARED / "benchmarks" / "ag_news" / "test.csv")], AG_NEWS_COLUMNS
    if case == "mixed":
        folder = work / "inputs" / "mixed"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "feed.jsonl").write_text(MIXED_JSONL, encoding="utf-8")
        (folder / "sheet.csv").write_text(MIXED_CSV, encoding="utf-8")
        for page in sorted((REPO / "data" / "samples").glob("*.txt"))[:2]:
            shutil.copy(page, folder / page.name)
        return [str(folder)], []
    if case == "100k":
        return [str(corpus_dir(work / "inputs", 100_000, 0))], []
    raise SystemExit(f"unknown case {case!r}")


def run(python: Path, checkout: Path, case: str, variant: str, out: Path, model: Path,
        case_args: tuple[list[str], list[str]]) -> None:
    paths, extra = case_args
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(python), "-m", "pipeline", "run", *paths, *extra, "-o", str(out), "-m", str(model),
           *VARIANTS[variant], "-q"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{checkout.name} {case}-{variant} failed ({done.returncode}):\n{done.stderr}")
    print(f"  {checkout.name:>12} {case}-{variant}: {time.perf_counter() - t0:.1f} s", file=sys.stderr,
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout")
    parser.add_argument("--other-python", type=Path, default=None,
                        help="its Python (default: <other>/.venv/bin/python)")
    parser.add_argument("--out", type=Path, required=True, help="work directory (outputs kept here)")
    parser.add_argument("--cases", default="samples,agnews,mixed,100k")
    parser.add_argument("--variants", default="j1,j2,dask")
    parser.add_argument("--rerun-other", action="store_true")
    parser.add_argument("--compare-only", action="store_true", help="only compare the outputs in --out")
    args = parser.parse_args(argv)
    other = args.other.resolve()
    checkouts = {"this": (REPO, Path(sys.executable)),
                 "other": (other, args.other_python or other / ".venv" / "bin" / "python")}
    work = args.out.resolve()
    model = work / "model" / "category_classifier.skops"
    if not model.is_file():
        model.parent.mkdir(parents=True, exist_ok=True)
        for part in (REPO / "models").glob("category_classifier.*"):
            shutil.copy(part, model.parent / part.name)
    cases, variants = args.cases.split(","), args.variants.split(",")
    case_args = {} if args.compare_only else {case: inputs(case, work) for case in cases}
    for name, (checkout, python) in checkouts.items():
        for case in cases:
            for variant in variants:
                out = work / name / f"{case}-{variant}"
                if args.compare_only or (name == "other" and not args.rerun_other
                                         and (out / "run.json").is_file()):
                    continue
                run(python, checkout, case, variant, out, model, case_args[case])

    differ = 0
    print("| case | file | this | other | same |")
    print("|---|---|---|---|---|")
    for case in cases:
        for file in FILES:
            digests = {name: {v: sha(work / name / f"{case}-{v}" / file) for v in variants}
                       for name in checkouts}
            found = {*digests["this"].values(), *digests["other"].values()}
            same = len(found) == 1 and "missing" not in found
            differ += not same
            print(f"| {case} ({'/'.join(variants)}) | {file} | {_cell(digests['this'])} "
                  f"| {_cell(digests['other'])} | {'yes' if same else '**no**'} |")
    print(f"\n{differ} difference(s)" if differ else "\nall identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
