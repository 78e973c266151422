"""Clean text → the features both models read: one embedding, TF-IDF words, tag candidates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hybrid.embed import Embedder
from hybrid.ingest.clean import CleanText, prefix, without_addresses, without_math
from hybrid.ingest.keys import text_key
from hybrid.ingest.segment import Segmenter


@dataclass
class Features:
    embedding: np.ndarray
    words: list[str]
    head_words: list[str]
    candidates: list[str]
    title: str
    lexical: str
    phrases: set[str] = field(default_factory=set)  # candidates joined from repeated words
    text: str = ""  # the whole article as a key (`label_key`): what a reader sees, code included
    heads: str = ""  # title, description and headings as a key: what the article is about
    names: set[str] = field(default_factory=set)  # candidates that name a place, person, body
    everyday: set[str] = field(default_factory=set)  # candidates joined from everyday words
    actions: set[str] = field(default_factory=set)  # familiar verbs the text says (合成, 优化)


def doc_words(doc: Features) -> list[str]:
    """TF-IDF analyzer; module-level functions so fitted vectorizers pickle."""
    return doc.words


def doc_head_words(doc: Features) -> list[str]:
    return doc.head_words


def doc_text(doc: Features) -> str:
    return doc.lexical.lower()


class Featurizer:
    def __init__(self, embedder: Embedder, segmenter: Segmenter, embed_budget: int = 600,
                 tag_prefix_chars: int = 3000,
                 candidate_segmenter: Segmenter | None = None) -> None:
        """`candidate_segmenter`: finds the tag candidates instead of `segmenter` (training)."""
        self.embedder = embedder
        self.segmenter = segmenter
        self.embed_budget = embed_budget
        self.tag_prefix_chars = tag_prefix_chars
        self.candidate_segmenter = candidate_segmenter

    def transform(self, texts: Sequence[CleanText]) -> list[Features]:
        embeddings = self.embedder.embed([t.embedding_input(self.embed_budget) for t in texts])
        out = []
        # one string object per distinct word and candidate of the call: training holds every
        # article's features at once (~12 MB less a 700-article chunk of long posts), and a
        # worker's pickle of them writes each string once
        shared: dict[str, str] = {}
        for text, embedding in zip(texts, embeddings, strict=True):
            prose = text.lexical_text()
            head = without_math(without_addresses(
                f"{text.title}\n{text.description}\n{prefix(text.body, self.tag_prefix_chars)}"))
            candidates, phrases, names, everyday, actions = (
                self.candidate_segmenter or self.segmenter).candidates(head)
            out.append(Features(
                embedding=embedding,
                words=_shared(self.segmenter.words(prose), shared),
                head_words=_shared(self.segmenter.words(f"{text.title}\n{text.description}"),
                                   shared),
                candidates=_shared(candidates, shared),
                title=text.title,
                lexical=prose,
                phrases=phrases,
                names=names,
                everyday=everyday,
                actions=actions,
                text=text_key("\n".join((text.title, text.description, text.body, text.code))),
                heads=text_key("\n".join((text.title, text.description, text.headings))),
            ))
        return out


def _shared(strings: list[str], shared: dict[str, str]) -> list[str]:
    """`strings`, each equal one replaced by the first seen (the same text, one object)."""
    return [shared.setdefault(s, s) for s in strings]
