"""How long comparing two large runs takes (``hsj-pipeline compare`` and the work ``run --previous`` adds).

Builds two overlapping runs' outputs once (cached in ``--workdir``): seeded HSJ-style pages from
``benchmarks/generate_corpus.py`` for about 110% of ``--articles`` unique articles; the old run
reads the first pages holding about ``--articles`` of them, the new run the last pages holding
about as many (so about 90% of the articles are in both, 10% new, 10% gone). Both are real
``hsj-pipeline run`` outputs (``--jobs 2``). Then it times, in this process, reading each output
directory and comparing them (``pipeline.compare``), and once the whole ``hsj-pipeline compare
--json`` command as a fresh process (imports included).

    python benchmarks/compare_runs.py                      # 100k articles per run
    python benchmarks/compare_runs.py --articles 2000      # a quick check
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate_corpus import write_corpus  # noqa: E402


def _link_pages(pages: list[Path], into: Path) -> None:
    """The chosen pages in a directory of their own (hard links where possible: no copy)."""
    into.mkdir(parents=True, exist_ok=True)
    for page in pages:
        target = into / page.name
        if not target.exists():
            try:
                os.link(page, target)
            except OSError:
                shutil.copy(page, target)


def build_runs(workdir: Path, articles: int, seed: int, jobs: int) -> tuple[Path, Path]:
    """Two overlapping runs' output directories, made once and reused."""
    base = workdir / f"compare-{articles}-s{seed}"
    old_out, new_out = base / "old_out", base / "new_out"
    if (old_out / "run.json").is_file() and (new_out / "run.json").is_file():
        return old_out, new_out
    pages_dir = base / "pages"
    if not pages_dir.is_dir():
        t0 = time.perf_counter()
        write_corpus(articles * 11 // 10, pages_dir, seed=seed)
        print(f"generated pages for {articles * 11 // 10} articles in {time.perf_counter() - t0:.1f} s")
    pages = sorted(pages_dir.glob("page_*.txt"))
    share = round(len(pages) * 10 / 11)
    _link_pages(pages[:share], base / "old_pages")
    _link_pages(pages[len(pages) - share:], base / "new_pages")
    for name, out in (("old", old_out), ("new", new_out)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "run", str(base / f"{name}_pages"), "--out", str(out),
                        "--jobs", str(jobs), "--quiet"], check=True, cwd=HERE.parent)
        print(f"built the {name} run in {time.perf_counter() - t0:.1f} s")
    return old_out, new_out


def members(out: Path) -> dict[int, set[str]]:
    """Topic id -> article ids (outside the timed part)."""
    groups: dict[int, set[str]] = {}
    with open(out / "articles.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["cluster"] is not None and record["cluster"] >= 0:
                groups.setdefault(record["cluster"], set()).add(record["id"])
    return groups


def calibration(old_out: Path, new_out: Path, old: object, new: object) -> None:
    """Each pair the optimal assignment makes, by similarity: the share of articles the two topics
    share (Jaccard over the articles in both runs) and whether the new topic is the old one's best
    continuation by shared articles: the evidence for ``[compare] min_similarity``."""
    from scipy.optimize import linear_sum_assignment

    from pipeline.compare import topic_similarity

    old_ids, new_ids, sim = topic_similarity(old, new)
    mo, mn = members(old_out), members(new_out)
    both = set(old.categories) & set(new.categories)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    print("assigned pairs (similarity, Jaccard of shared articles, best continuation?):")
    for r, c in sorted(zip(rows, cols), key=lambda p: -sim[p]):
        def jac(i: int, j: int) -> float:
            a, b = mo[old_ids[i]] & both, mn[new_ids[j]] & both
            return len(a & b) / max(1, len(a | b))
        best = max(range(len(new_ids)), key=lambda j: jac(r, j))
        print(f"  {sim[r, c]:.2f} {jac(r, c):.2f} {'yes' if best == c else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000, help="unique articles per run (about)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the two pipeline runs")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hsj-compare"))
    args = parser.parse_args()
    old_out, new_out = build_runs(Path(args.workdir), args.articles, args.seed, args.jobs)

    from pipeline.compare import compare, match_topics, read_run
    from pipeline.config import load_config

    import scipy.optimize  # noqa: F401 - imported before timing
    import scipy.sparse  # noqa: F401

    config = load_config().compare
    wall, cpu = [time.perf_counter()], [time.process_time()]

    def tick() -> None:
        wall.append(time.perf_counter())
        cpu.append(time.process_time())

    old = read_run(old_out)
    tick()
    new = read_run(new_out)
    tick()
    matches = match_topics(old, new, config.min_similarity)
    tick()
    result = compare(old, new, config)  # matches again: the library total counts it once
    tick()
    d = result.to_dict()
    part = [(wall[i + 1] - wall[i], cpu[i + 1] - cpu[i]) for i in range(4)]
    print(f"old run: {old.n_articles} articles, {len(old.topics)} topics; new run: {new.n_articles} "
          f"articles, {len(new.topics)} topics; {len(d['new'])} new, {len(d['gone'])} gone, "
          f"{d['counts']['kept']} in both; topics {d['counts']['topics']}")
    print("similarity of the matched topic pairs:", sorted(m.similarity for m in matches))
    names = ("read old", "read new", "match topics", "compare (matching included)")
    print("; ".join(f"{n} {w:.2f} s ({c:.2f} CPU s)" for n, (w, c) in zip(names, part)))
    total_wall = part[0][0] + part[1][0] + part[3][0]
    total_cpu = part[0][1] + part[1][1] + part[3][1]
    print(f"library total (read both + compare): {total_wall:.2f} s ({total_cpu:.2f} CPU s)")
    calibration(old_out, new_out, old, new)
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "compare", str(old_out), str(new_out),
                        "--json", str(Path(tmp) / "cmp.json"), "--quiet"], check=True, cwd=HERE.parent)
        cli = time.perf_counter() - c0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        size = (Path(tmp) / "cmp.json").stat().st_size
    print(f"hsj-pipeline compare --json (fresh process, imports included): {cli:.2f} s ({cli_cpu:.2f} CPU s); "
          f"JSON {size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(json.dumps({"articles_old": old.n_articles, "articles_new": new.n_articles,
                      "library_s": round(total_wall, 3), "library_cpu_s": round(total_cpu, 3),
                      "cli_s": round(cli, 3), "cli_cpu_s": round(cli_cpu, 3)}))


if __name__ == "__main__":
    main()
