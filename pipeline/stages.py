"""The stage protocol and the registry: every stage is a plain component built from its config section.

A stage computes, then writes its fields; it never forks, never touches the garbage collector and
never writes files (how its functions run is :mod:`pipeline.execution`'s business, the order
:mod:`pipeline.runner`'s). The protocol is spaCy's split of ``predict`` and
``set_annotations`` with scikit-learn's ``fit``, plus statistics that combine over batches:

``partial(batch) -> stats`` and ``combine(parts) -> stats`` (optional)
    Statistics of one batch, and of the whole corpus from those of its batches, in order. An
    executor computes the parts where the batches are (another process, a Dask worker).
``fit(data) -> None`` (optional)
    Learn what ``predict`` needs for this corpus: from the combined statistics when the stage has
    ``partial``, else from every item (cheap, corpus-wide questions such as the stock blurbs).
``predict(batch) -> columns``
    The stage's values for a batch. Pure: it reads the batch and what ``fit`` learned and changes
    neither, so it can run anywhere and in any grouping (a batch's values equal the whole run's).
``set_annotations(batch, columns) -> counts``
    The one writer of the stage's fields onto the records; returns counts that add up over batches.
``fit_predict(batch) -> columns`` (optional)
    ``fit`` then ``predict`` of the whole corpus as one batch, where that is cheaper (like
    scikit-learn's ``fit_transform``); used when the executor gives the stage one batch.

Class attributes: ``name``; ``corpus_wide`` (True: the stage needs the whole corpus in one
process, so executors give it one batch); ``uses`` (what ``from_config`` takes besides its
section: earlier stages by name, or the run's resources); ``notes`` (lines for ``run.json``).
Optional: ``summary()`` (corpus-level counts) and ``products()`` (what the stage made besides
fields: the matrix, the topics).

The parse stage is the source: its ``predict`` reads files and its ``combine`` merges them into
the records every later stage annotates.
"""
from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any, ClassVar, Protocol

from .config import Config


class Stage(Protocol):
    """What the runner needs of a stage (the optional methods are looked up by name)."""

    name: ClassVar[str]
    corpus_wide: ClassVar[bool]
    uses: ClassVar[tuple[str, ...]]
    notes: list[str]

    def predict(self, batch: Sequence[Any]) -> Any:
        """The stage's values for ``batch`` (pure)."""

    def set_annotations(self, batch: Sequence[Any], columns: Any) -> dict[str, Any]:
        """Write ``columns`` onto the records of ``batch``; return counts."""


# name -> "module:Class", in run order; imported only when built, so `import pipeline` stays cheap
REGISTRY: dict[str, str] = {
    "parse": "pipeline.parse:ParseStage",
    "clean": "pipeline.clean:CleanStage",
    "vectorise": "pipeline.vectorise:VectoriseStage",
    "cluster": "pipeline.cluster:ClusterStage",
    "tag": "pipeline.tag:TagStage",
}
STAGE_NAMES = tuple(REGISTRY)


def stage_class(name: str) -> type:
    """The component class registered as ``name``."""
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(import_module(module), attribute)


def build_stages(config: Config, classifier: Any, *, remote: bool = False) -> list[Any]:
    """Every stage, in run order, built from its config section (``config.<name>``).

    ``classifier``: the loaded category classifier (the tag stage's model). ``remote``: batches
    may run on other machines (Dask), so the parse stage checks that they read the client's bytes.
    Each class's ``from_config(section, **resources)`` takes the resources it names.
    """
    built: dict[str, Any] = {}
    resources: dict[str, Any] = {"classifier": classifier, "remote": remote}
    for name in STAGE_NAMES:
        cls = stage_class(name)
        wanted = {key: value for key, value in {**resources, **built}.items()
                  if key in getattr(cls, "uses", ())}
        built[name] = cls.from_config(getattr(config, name), **wanted)
    return list(built.values())
