"""hsj-pipeline: parse, clean, vectorise, cluster and tag HSJ integrated care system news pages.

Public API::

    from pipeline import run, load_classifier
    result = run(["page.txt"])            # records, clusters and counts; writes nothing unless asked
    clf = load_classifier()               # the shipped category classifier
    clf.predict(["ICB sued over conflict in £40m contract award"])

``pipeline.run`` is the function (the module of the same name keeps its heavy imports inside
functions, so importing the package stays cheap).
"""
from __future__ import annotations

from typing import Any

from .version import __version__  # noqa: E402 - one definition (pyproject.toml repeats it)
__all__ = ["run", "load_classifier", "CategoryClassifier", "__version__"]

# Eager (pipeline/run.py only imports config/records/errors at module level): a lazy attribute
# would be shadowed by the submodule as soon as anything imports ``pipeline.run``, and then
# ``from pipeline import run`` would return the module instead of the function.
from .run import run  # noqa: E402


def __getattr__(name: str) -> Any:
    if name == "run":
        from .run import run as _run

        globals()["run"] = _run  # shadow the submodule attribute with the function
        return _run
    if name == "load_classifier":
        from .model_store import load_classifier

        return load_classifier
    if name == "CategoryClassifier":
        from .tag import CategoryClassifier

        return CategoryClassifier
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
