"""spaCy entry point of hsj-pipeline's ``hsj_category`` component (see pipeline/spacy_component.py).

Why a top-level module with a unique name: spaCy imports every installed ``spacy_factories``
entry point whenever it builds a pipeline, even ``spacy.blank("en")``. Pointing the entry point
straight at ``pipeline.spacy_component`` broke every spaCy pipeline in any folder that has its
own ``pipeline`` module or package (it shadows ours). Here such a clash only makes the
component itself unavailable, with a message saying why.
"""
from __future__ import annotations

from typing import Any

try:
    from pipeline.spacy_component import make_hsj_category
except ImportError as exc:  # another module named "pipeline" shadows hsj-pipeline's package
    _REASON = str(exc)

    def make_hsj_category(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        """Stands in when hsj-pipeline's package cannot be imported."""
        raise ImportError("hsj-pipeline's spaCy component is unavailable: the package 'pipeline' "
                          f"imported here is not hsj-pipeline's ({_REASON}); run from another "
                          "folder or rename your own 'pipeline' module")

__all__ = ["make_hsj_category"]
