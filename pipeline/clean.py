"""Clean stage: normalise text and turn it into lemma tokens with spaCy (blank English + lookups).

BASELINE VERSION: the full normalisation (money, acronyms, phrases, blurbs, scraped-text repair)
is built in issue 7. The public interface below is what other stages rely on:

- ``TextCleaner(config).tokens(texts) -> list[list[str]]``: tokens per text, each distinct text
  cleaned once; the object pickles without its spaCy pipeline (it is rebuilt lazily).
"""
from __future__ import annotations

from collections.abc import Sequence

from .config import CleanConfig


class TextCleaner:
    """Turns raw texts into lists of normalised lemma tokens."""

    def __init__(self, config: CleanConfig | None = None) -> None:
        self.config = config or CleanConfig()
        self._nlp = None

    def __getstate__(self) -> dict:
        return {"config": self.config, "_nlp": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def nlp(self):
        if self._nlp is None:
            import spacy

            nlp = spacy.blank("en")
            nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
            nlp.initialize()
            self._nlp = nlp
        return self._nlp

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """Lemma tokens (lower-cased, stop words and punctuation dropped) for each text."""
        unique = list(dict.fromkeys(texts))
        out: dict[str, list[str]] = {}
        for text, doc in zip(unique, self.nlp.pipe(unique, batch_size=self.config.batch_size)):
            out[text] = [t.lemma_.lower() for t in doc
                         if not (t.is_stop or t.is_punct or t.is_space or t.lower_ in self.nlp.Defaults.stop_words)]
        return [out[t] for t in texts]
