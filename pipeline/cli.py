"""The ``hsj-pipeline`` command: thin typer wrappers that parse options, call the library, print.

User errors (:class:`~pipeline.errors.PipelineError`) become one line on stderr and a non-zero
exit code; ``--debug`` shows the traceback instead. Each stage adds its command here when it
does real work.
"""
from __future__ import annotations

import sys
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
