"""How many pipeline functions and modules a run passes through, and how often it switches the
collector off: a measure of how hard the code is to follow, for docs/ARCHITECTURE.md.

    python benchmarks/trace_calls.py CHECKOUT INPUT [--jobs 2] [--functions out.json]

Traces the main process only (``sys.setprofile``; forked children are not followed) of
``run([INPUT], out_dir=<temporary>)`` with the tag stage shared at any size, importing the
``pipeline`` package of CHECKOUT, so two commits can be compared side by side.
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout")
    parser.add_argument("input")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--functions", default=None, help="write the functions called here (JSON)")
    args = parser.parse_args(argv)
    root = str(Path(args.checkout).resolve())
    package = root + "/pipeline/"
    sys.path.insert(0, root)
    functions: set[tuple[str, str]] = set()
    edges: set[tuple[str, str]] = set()
    switched_off = [0]
    disable = gc.disable

    def counting_disable() -> None:
        switched_off[0] += 1
        disable()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(package):
            return
        module = frame.f_code.co_filename[len(root):]
        functions.add((module, frame.f_code.co_name))
        caller = frame.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(package):
            caller = caller.f_back
        if caller is not None and caller.f_code.co_filename[len(root):] != module:
            edges.add((caller.f_code.co_filename[len(root):], module))

    from pipeline.config import load_config
    from pipeline.run import run

    try:  # every stage shared: the key's name in this checkout, or in those before it was renamed
        config = load_config(None, ["tag.parallel_threshold=0"])
    except Exception:  # noqa: BLE001 - an older checkout's ConfigError
        config = load_config(None, ["run.overlap_min_articles=0"])
    out = Path(tempfile.mkdtemp())
    gc.disable = counting_disable  # type: ignore[assignment]
    sys.setprofile(profile)
    try:
        run([args.input], out_dir=out / "out", n_jobs=args.jobs, config=config)
    finally:
        sys.setprofile(None)
        gc.disable = disable  # type: ignore[assignment]
        shutil.rmtree(out)
    modules = {m for m, _ in functions}
    print(f"functions {len(functions)}  modules {len(modules)}  cross-module edges {len(edges)}  "
          f"collector switched off {switched_off[0]} times")
    if args.functions:
        Path(args.functions).write_text(json.dumps(sorted(f"{m}:{f}" for m, f in functions), indent=1),
                                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
