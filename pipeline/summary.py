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
    gold = sum(1 for a in articles if a.label_source == "gold")
    head.add_row("training labels (gold)", str(gold))
    head.add_row("predicted by the model", str(sum(1 for a in articles if a.label_source == "model")))
    head.add_row("uncertain", str(sum(1 for a in articles if a.uncertain)))
    head.add_row("  of them out of scope", str(sum(1 for a in articles if a.uncertain_reason == "out_of_scope")))
    head.add_row("reconciled", "[green]yes[/]" if rec.get("ok") else "[red]NO[/]")
    head.add_row("time", f"{result.seconds or sum(result.timings.values()):.1f} s")
    console.print(head)

    cats = Counter(a.category for a in articles)
    table = Table(title="categories", title_justify="left")
    table.add_column("category")
    table.add_column("articles", justify="right")
    table.add_column("gold", justify="right")
    table.add_column("uncertain", justify="right")
    unsure = Counter(a.category for a in articles if a.uncertain)
    golden = Counter(a.category for a in articles if a.label_source == "gold")
    order = [c for c in CATEGORY_ORDER if cats.get(c)] + sorted(c for c in cats if c and c not in CATEGORY_ORDER)
    for cat in order:
        table.add_row(_plain(cat), str(cats[cat]), str(golden.get(cat, 0)), str(unsure.get(cat, 0)))
    if cats.get(None):
        table.add_row("(untagged)", str(cats[None]), "", "")
    if gold:
        table.caption = ("gold: in the model's training data, so the category is its training label; "
                         "these say nothing about the model's quality")
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

    comparison = getattr(result, "comparison", None)
    if comparison is not None:
        console.print(f"since the previous run ({comparison.old['path']}): {len(comparison.new_ids)} "
                      f"articles new, {len(comparison.gone_ids)} gone; topics "
                      + ", ".join(f"{n} {s}" for s, n in comparison.topic_counts().items()),
                      highlight=False, markup=False)

    if result.outputs:
        out = Table(title="outputs", show_header=False, title_justify="left", box=None)
        for name, path in result.outputs.items():
            out.add_row(name, _plain(str(path)))
        console.print(out)


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def print_comparison(comparison: Any, console: Console, max_rows: int = MAX_SUMMARY_CLUSTERS) -> None:
    """``hsj-pipeline compare``: totals, one row per ICS page (articles, new, gone, category
    shifts) and the topics that are not simply the same."""
    c = comparison
    head = Table(title="hsj-pipeline compare", show_header=False, title_justify="left", box=None)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("old run", f"{c.old['path']} ({c.old['articles']} articles, {c.old['topics']} topics)")
    head.add_row("new run", f"{c.new['path']} ({c.new['articles']} articles, {c.new['topics']} topics)")
    head.add_row("articles", f"{len(c.new_ids)} new, {len(c.gone_ids)} gone, {c.kept} in both")
    head.add_row("category changed", f"{len(c.category_changed)} of the {c.kept} in both")
    head.add_row("topics", ", ".join(f"{n} {s}" for s, n in c.topic_counts().items()))
    console.print(head)

    table = Table(title="per ICS page", title_justify="left")
    for name, justify in (("ICS", "left"), ("articles", "right"), ("new", "right"), ("gone", "right"),
                          ("category change", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for system, change in c.systems.items():
        shifts = sorted(((after - before, cat) for cat, (before, after) in change.categories.items()
                         if after != before), key=lambda x: (-abs(x[0]), x[1]))
        table.add_row(system, f"{change.articles[0]} -> {change.articles[1]}", str(len(change.new)),
                      str(len(change.gone)), ", ".join(f"{cat} {_signed(d)}" for d, cat in shifts[:4]))
    console.print(table)

    moved = [t for t in c.topics if t.status != "same"]
    if moved:
        topics = Table(title="topics that changed", title_justify="left")
        for name, justify in (("status", "left"), ("old id", "right"), ("new id", "right"),
                              ("size", "right"), ("terms", "left")):
            topics.add_column(name, justify=justify, overflow="fold")
        for t in moved[:max_rows]:
            size = f"{t.old_size if t.old_size is not None else '-'} -> {t.new_size if t.new_size is not None else '-'}"
            topics.add_row(t.status, "-" if t.old_id is None else str(t.old_id),
                           "-" if t.new_id is None else str(t.new_id), size,
                           ", ".join((t.new_terms or t.old_terms or [])[:5]))
        if len(moved) > max_rows:
            topics.caption = f"{len(moved) - max_rows} more in the --json file"
        console.print(topics)

    if c.category_changed:
        changed = Table(title="category changed", title_justify="left")
        for name in ("id", "old", "new", "headline"):
            changed.add_column(name, overflow="fold")
        for item in c.category_changed[:max_rows]:
            changed.add_row(item["id"], str(item["old"]), str(item["new"]), item["headline"])
        if len(c.category_changed) > max_rows:
            changed.caption = f"{len(c.category_changed) - max_rows} more in the --json file"
        console.print(changed)
