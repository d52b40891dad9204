"""What each speed device of the execution layer is worth: the whole run with all of them, and
with each one switched off, at a stated size.

Why: a device (sharing a stage's batches with forked processes, keeping the garbage collector
off the records) stays only while it saves at least 5% of the
whole run at 100k and at 1M articles (``benchmarks/README.md``, "Speed devices"). Outputs are
the same either way (tested); only the time changes.

    python benchmarks/speed_devices.py --size 100000 --rounds 2
    python benchmarks/speed_devices.py --size 1000000 --rounds 1

Each configuration runs ``benchmarks/run_scale.py --no-baseline`` in a fresh process (imports
paid every time). Rounds interleave the configurations (all once, then all again, each round
starting one configuration later, so none always follows the same one), so a machine that
slows down during the measurement slows every configuration alike. The fastest round of each is
compared, and so is the median over rounds of the paired saving (each round's run without the
device against the same round's run with all of them). CPU seconds (user + system, this process
and its children) are reported beside wall seconds: on a shared machine they move less with the
load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DEVICES = ("collector", "fork:parse", "fork:clean", "fork:tag")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(size: int, without: str | None, args: argparse.Namespace) -> dict[str, float]:
    """One run of the whole pipeline at ``size`` with ``without`` switched off."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, str(REPO / "benchmarks" / "run_scale.py"), "--sizes", str(size), "--jobs",
           str(args.jobs), "--workdir", args.workdir, "--no-baseline", "--out", str(out)]
    if without:
        cmd += ["--without", without]
    before = children_cpu()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    cpu = children_cpu() - before
    result = json.loads(out.read_text(encoding="utf-8"))[0]
    out.unlink()
    seconds = result["ours"]["seconds"]
    return {"wall": float(seconds["total"]), "cpu": round(cpu, 2),
            "load": round(os.getloadavg()[0], 1),
            **{f"stage_{k}": float(v) for k, v in seconds.items() if k != "total"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hsj-scale"))
    args = parser.parse_args(argv)
    configs: list[str | None] = [None, *[d for d in args.devices.split(",") if d]]
    runs: dict[str, list[dict[str, float]]] = {str(c): [] for c in configs}
    for round_ in range(args.rounds):
        shift = round_ % len(configs)  # each configuration takes each place in the round in turn
        for config in configs[shift:] + configs[:shift]:
            runs[str(config)].append(measure(args.size, config, args))
            print(f"round {round_ + 1} {config or 'all devices'}: {runs[str(config)][-1]}",
                  file=sys.stderr, flush=True)
    best = {k: min(v, key=lambda r: r["wall"]) for k, v in runs.items()}
    base = best["None"]
    print(f"\n{args.size:,} articles, --jobs {args.jobs}, fastest of {args.rounds} round(s):\n")
    print("| run | wall | CPU | saving of the device (wall, fastest) | median paired saving |")
    print("|---|---:|---:|---:|---:|")
    print(f"| all devices | {base['wall']:.1f} s | {base['cpu']:.1f} s | | |")
    for config in configs[1:]:
        got = best[str(config)]
        saving = (got["wall"] - base["wall"]) / got["wall"]
        paired = statistics.median((off["wall"] - on["wall"]) / off["wall"]
                                   for on, off in zip(runs["None"], runs[str(config)]))
        print(f"| without {config} | {got['wall']:.1f} s | {got['cpu']:.1f} s | {100 * saving:.1f}% "
              f"| {100 * paired:.1f}% |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"devices-{args.size}.json"
    path.write_text(json.dumps({"size": args.size, "jobs": args.jobs, "runs": runs}, indent=2) + "\n",
                    encoding="utf-8")
    print(f"\nresults: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
