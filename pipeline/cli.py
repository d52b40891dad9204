"""The ``hsj-pipeline`` command: thin typer wrappers that parse options, call the library, print.

User errors (:class:`~pipeline.errors.PipelineError`) become one line on stderr and a non-zero
exit code; ``--debug`` shows the traceback instead. Each stage adds its command here when it
does real work.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import PipelineError

app = typer.Typer(
    name="hsj-pipeline",
    help="Parse, clean, cluster and tag HSJ integrated care system news pages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hsj-pipeline {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    """Parse, clean, cluster and tag HSJ integrated care system news pages."""
    _state["debug"] = debug


def err(message: str) -> None:
    """Print one line to stderr."""
    typer.echo(message, err=True)


# ---- commands are added below, one block per stage -------------------------------------------


# ---- run ------------------------------------------------------------------------------------------


@app.command("run")
def run_command(
    paths: Optional[list[Path]] = typer.Argument(
        None, help="Pages (.txt), .jsonl or .csv files, or directories of them; default: the bundled samples."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (default configs/default.toml)."),
    set_: list[str] = typer.Option([], "--set", help="Override one config key: section.key=value (repeatable)."),
    out: Path = typer.Option(Path("out"), "--out", "-o", help="Output directory."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Classifier .joblib (default: tag.model, else the shipped one)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=0, help="Worker processes for cleaning; 0 = all cores (default run.jobs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """Parse, clean, vectorise, cluster and tag; write articles.jsonl, rejects.jsonl, run.json, report.html."""
    from rich.console import Console

    from .config import load_config
    from .run import run
    from .summary import RichProgress, print_summary

    _state["debug"] = _state["debug"] or debug
    cfg = load_config(config, set_)
    err_console = Console(stderr=True)
    bars = RichProgress(err_console) if not quiet and err_console.is_terminal else None
    with bars if bars is not None else contextlib.nullcontext():
        result = run(paths or None, config=cfg, out_dir=out, model=model, progress=bars, n_jobs=jobs)
    if not quiet:
        print_summary(result, Console())


def main() -> None:
    """Console-script entry point: run the app, turn user errors into one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except PipelineError as exc:
        if debug:
            raise
        err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
