"""Terminal output of ``hsj-pipeline run``: rich progress per stage and the closing summary tables.

Kept out of :mod:`pipeline.run` (the library never prints) and out of :mod:`pipeline.cli` (which
stays a thin list of commands).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .errors import escape_controls
from .report import CATEGORY_ORDER

MAX_SUMMARY_CLUSTERS = 15


def _plain(text: str) -> Text:
    """User text (headlines, terms, paths) for a table cell: controls escaped, no rich markup."""
    return Text(escape_controls(text))


class RichProgress:
    """Adapter from :class:`pipeline.run.Progress` to one rich progress bar per stage."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(TextColumn("[bold]{task.description:<10}"), BarColumn(),
                              MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                              TimeElapsedColumn(), console=console, transient=False)
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def start(self, stage: str, total: int) -> None:
        unit = "files" if stage == "parse" else "articles"
        self._tasks[stage] = self._bars.add_task(stage, total=max(total, 1), unit=unit)

    def advance(self, stage: str, amount: int) -> None:
        self._bars.advance(self._tasks[stage], amount)

    def finish(self, stage: str, seconds: float) -> None:
        task = self._tasks[stage]
        self._bars.update(task, completed=self._bars.tasks[task].total)


def print_summary(result: Any, console: Console) -> None:
    """Articles, rejects, clusters (terms, size, representative), categories, uncertain, outputs."""
    articles = result.articles
    rec = result.counts.get("reconciliation", {})
    head = Table(title="hsj-pipeline run", show_header=False, title_justify="left", box=None)
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("input files", str(len(result.inputs)))
    head.add_row("slots read", str(rec.get("slots", "-")))
    head.add_row("articles", str(len(articles)))
    head.add_row("merged duplicates", str(rec.get("merged", "-")))
    head.add_row("rejects", str(len(result.rejects)))
    stripped = result.counts.get("parse", {}).get("controls_stripped", 0)
    if stripped:
        head.add_row("control characters stripped", str(stripped))
    head.add_row("clusters", str(len(result.clusters)))
    head.add_row("uncertain", str(sum(1 for a in articles if a.uncertain)))
    head.add_row("reconciled", "[green]yes[/]" if rec.get("ok") else "[red]NO[/]")
    head.add_row("time", f"{result.seconds or sum(result.timings.values()):.1f} s")
    console.print(head)

    cats = Counter(a.category for a in articles)
    table = Table(title="categories", title_justify="left")
    table.add_column("category")
    table.add_column("articles", justify="right")
    table.add_column("uncertain", justify="right")
    unsure = Counter(a.category for a in articles if a.uncertain)
    order = [c for c in CATEGORY_ORDER if cats.get(c)] + sorted(c for c in cats if c and c not in CATEGORY_ORDER)
    for cat in order:
        table.add_row(_plain(cat), str(cats[cat]), str(unsure.get(cat, 0)))
    if cats.get(None):
        table.add_row("(untagged)", str(cats[None]), "")
    console.print(table)

    if result.clusters:
        ctable = Table(title="clusters", title_justify="left")
        ctable.add_column("id", justify="right")
        ctable.add_column("size", justify="right")
        ctable.add_column("terms")
        ctable.add_column("representative headline", overflow="fold")
        ordered = sorted(result.clusters, key=lambda c: (-c.size, c.id))
        for c in ordered[:MAX_SUMMARY_CLUSTERS]:
            ctable.add_row(str(c.id), str(c.size), _plain(", ".join(list(c.terms)[:5])),
                           _plain(c.representative_headline or ""))
        if len(ordered) > MAX_SUMMARY_CLUSTERS:
            ctable.caption = f"{len(ordered) - MAX_SUMMARY_CLUSTERS} more in report.html"
        console.print(ctable)

    if result.outputs:
        out = Table(title="outputs", show_header=False, title_justify="left", box=None)
        for name, path in result.outputs.items():
            out.add_row(name, _plain(str(path)))
        console.print(out)
