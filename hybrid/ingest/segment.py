"""Word segmentation (rjieba, the Rust port of jieba) for lexical features and tag candidates.

A bundled dictionary of tech terms keeps phrases such as 负载均衡 and tokens such as vue3,
laravel11, k8s, node.js whole; users add their own jieba-format dictionary and stop words.
Each `Segmenter` owns its dictionary, so one model's vocabulary never leaks into another's
(cross-validation folds included).
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import rjieba

from hybrid import data
from hybrid.ingest.phrases import (
    CANDIDATE_POS,
    LATIN,
    NUMBERISH,
    latin_phrases,
    repeated_phrases,
)
from hybrid.ingest.shapes import notation
from hybrid.ingest.terms import (
    across,
    action_word,
    bound_to_names,
    everyday_word,
    glued,
    joins,
    lone_char,
    modifier_char,
    other_term,
    pieces_of,
    term_like,
    whole_terms,
)
from hybrid.ingest.title_terms import with_title_terms

_NOUN_CHAR_POS = {"n", "ng", "nr", "ns", "nt", "nz", "j", "k", "b", "h"}
_COMPOUND_POS = {"n", "nz", "vn", "l", "j"}
_NAME_POS = {"nr", "ns", "nt", "nrt", "nrfg"}
_CJK = re.compile(r"[\u4e00-\u9fff]")
_MAX_KNOWN_TOKENS = 500_000
# an address or an id is no keyword: hosts (`www.voidtools.com`, `docs.docker.com`; not
# `ASP.NET` or `CXL.io`) and hex digests (`67c3d80fb0167b8d`)
_ADDRESS = re.compile(r"^(?:www\..+|.+\.(?:com|org|cn|edu|gov)|(?=.*\d)(?=.*[a-f])[0-9a-f]{12,})$",
                      re.IGNORECASE)
_SEPARATOR = "\x00"
# a token goes on the Latin word before it when it continues it (`virtual|box`), ends it
# with a symbol that is part of the name (`libc|++`, `F|#`; not `page|#|intro`), or is a
# dot and a word that make it a dotted name (`Node|.|js`, `sql|.|Date`: the name is one
# word, whatever is then made of it); and `.|NET` is one word
_GLUE = re.compile(r"(?<=[A-Za-z0-9])\x00(?:\.\x00(?=[A-Za-z])|(?=[A-Za-z0-9]|(?:\+\+|#)"
                   r"(?:\x00(?![A-Za-z0-9])|$)))|(?<![^\x00])\.\x00(?=(?i:net)(?:\x00|$))")


class Candidates(NamedTuple):
    tokens: list[str]  # in order of appearance, repeats kept
    phrases: set[str]  # joined from words the text repeats together
    names: set[str]  # of places, people and bodies (哈尔滨, 华为): proper nouns, however common
    everyday: set[str]  # joined from everyday words only (研究进展, 社会环境): phrases, not terms
    actions: set[str]  # familiar verbs the text says (合成, 优化): what was done, no subject


def whole_words(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """jieba splits a Latin word at any dictionary word inside it (virtualbox → virtual +
    box, Laravel11 → Laravel + 11): put such pieces back together, so that no word or tag is
    ever a piece of a longer word."""
    out = list(tokens)
    for first, last in reversed(_pieces([token for token, _ in tokens])):
        out[first:last + 1] = [("".join(t for t, _ in tokens[first:last + 1]), "eng")]
    return out


def _pieces(tokens: list[str]) -> list[tuple[int, int]]:
    """(first, last) index of each run of tokens that are pieces of one Latin word: each
    ends in a letter or digit where the next begins with one. Found by one regex over the
    joined tokens, not a Python step per token: most articles have a few such runs in
    thousands of tokens."""
    joined = _SEPARATOR.join(tokens)
    if joined.count(_SEPARATOR) >= len(tokens):  # a token holds the separator itself
        joined = _SEPARATOR.join(t.replace(_SEPARATOR, " ") for t in tokens)
    runs: list[tuple[int, int]] = []
    index, counted = 0, 0
    for match in _GLUE.finditer(joined):
        index += joined.count(_SEPARATOR, counted, match.start())
        counted = match.start()
        last = index + match.group().count(_SEPARATOR)  # a dotted name glues two tokens on
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], last)
        else:
            runs.append((index, last))
    return runs


class _Verdicts(dict):
    """token → its verdict, computed once per distinct token: tokens repeat across articles,
    and checking each occurrence was most of the segmentation time."""

    def __init__(self, verdict: Callable[[str], str | None]) -> None:
        super().__init__()
        self.verdict = verdict

    def __missing__(self, token: str) -> str | None:
        if len(self) > _MAX_KNOWN_TOKENS:
            self.clear()
        word = self[token] = self.verdict(token)
        return word


_default_taken = threading.Lock()


def _new_dictionary() -> rjieba.Jieba:
    """A dictionary no other segmenter uses. rjieba's import builds one (0.2 s, 23 MB) for
    its module-level functions, which nothing here calls: a process's first segmenter (a
    pool worker's only one) takes it instead of building another; later ones build theirs."""
    default = getattr(rjieba, "_DEFAULT_JIEBA", None)
    if default is not None and _default_taken.acquire(blocking=False):
        return default
    return rjieba.Jieba()


def _read_words(path: Path) -> set[str]:
    return {w.strip().casefold() for w in path.read_text(encoding="utf-8").splitlines()} - {""}


class Segmenter:
    def __init__(self, user_dict: str | None = None, user_stopwords: str | None = None,
                 vocabulary: Iterable[str] = ()) -> None:
        self.user_dict = user_dict
        self.user_stopwords = user_stopwords
        self.vocabulary = sorted({v.strip() for v in vocabulary if v.strip() and " " not in v})
        self._jieba: rjieba.Jieba | None = None
        self._stop: frozenset[str] | None = None
        self._verdicts: _Verdicts | None = None
        self._terms: _Verdicts | None = None
        self._actions: _Verdicts | None = None
        self.own_words: set[str] = set()  # of the bundled and user dictionaries and the site

    def __getstate__(self) -> dict:
        # rjieba objects do not pickle: only the parameters, the rest is rebuilt on first use
        return {"user_dict": self.user_dict, "user_stopwords": self.user_stopwords,
                "vocabulary": self.vocabulary}

    def __setstate__(self, state: dict) -> None:
        # models saved before this held their caches too: read the parameters alone
        self.__init__(state["user_dict"], state["user_stopwords"], state["vocabulary"])

    @property
    def jieba(self) -> rjieba.Jieba:
        if self._jieba is None:
            self._jieba = _new_dictionary()
            dictionaries = [data.path("tech_terms.txt")]
            if self.user_dict:
                dictionaries.append(Path(self.user_dict))
            for path in dictionaries:
                self._add_dictionary(path)
            for term in self.vocabulary:
                self.own_words.add(term.casefold())
                if not self._jieba.has_word(term):
                    self._jieba.add_word(term, 2000, "eng" if LATIN.match(term) else "nz")
        return self._jieba

    def _add_dictionary(self, path: Path) -> None:
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 2000
            pos = parts[2] if len(parts) > 2 else ("eng" if LATIN.match(parts[0]) else "nz")
            self._jieba.add_word(parts[0], freq, pos)
            self.own_words.add(parts[0].casefold())

    @property
    def stopwords(self) -> frozenset[str]:
        if self._stop is None:
            words = _read_words(data.path("stopwords.txt"))
            if self.user_stopwords:
                words |= _read_words(Path(self.user_stopwords))
            self._stop = frozenset(words)
        return self._stop

    def _is_word(self, token: str) -> bool:
        if token.casefold() in self.stopwords or NUMBERISH.match(token):
            return False
        if _CJK.search(token):
            return len(token) >= 2
        return bool(LATIN.match(token)) and len(token) >= 2

    @property
    def _word_of(self) -> _Verdicts:
        if self._verdicts is None:
            self._verdicts = _Verdicts(self._verdict)
        return self._verdicts

    @property
    def _term_like(self) -> _Verdicts:
        if self._terms is None:
            self._terms = _Verdicts(self._looks_like_term)
        return self._terms

    @property
    def _action(self) -> _Verdicts:
        if self._actions is None:
            self._actions = _Verdicts(lambda token: action_word(token, self.jieba))
        return self._actions

    def _looks_like_term(self, token: str) -> bool:
        jieba = self.jieba  # loads the dictionaries, and with them `own_words`
        return token.casefold() in self.own_words or term_like(token, jieba)

    def _verdict(self, token: str) -> str | None:
        """The token as a lower-cased content word, or None."""
        stripped = token.strip()
        return stripped.casefold() if self._is_word(stripped) else None

    def words(self, text: str) -> list[str]:
        """Lower-cased content words for TF-IDF: no punctuation, numbers or stop words."""
        word_of = self._word_of
        tokens = self.jieba.cut(text)
        for first, last in reversed(_pieces(tokens)):
            tokens[first:last + 1] = ["".join(tokens[first:last + 1])]
        return [w for t in tokens if (w := word_of[t]) is not None]

    def candidates(self, text: str) -> Candidates:
        """Tag candidates in order of appearance, repeats kept so counts mean frequency, which
        of them are repeated phrases, and which are names of places, people or bodies.

        Nouns, named entities, English/version tokens and terms jieba tags otherwise
        (`other_term`: 死锁/v, 虚拟机/b) are candidates; adjacent Chinese nouns also form a
        compound candidate (容器 + 编排 → 容器编排). A longer run of content words that the
        text repeats is a candidate too (大角度机动, Lyapunov函数): keywords are often
        compounds that jieba splits, and authors repeat their keywords.
        """
        raw = whole_words(self.jieba.tag(text))
        everyday: set[str] = set()
        word_of = self._word_of
        words = [word_of[token] for token, _ in raw]  # every pass below reads these verdicts
        tagged = [(token.strip(), pos) for token, pos in raw]
        said = Counter(token for token, _ in tagged)
        candidate = [word is not None and (pos in CANDIDATE_POS or other_term(
            token, pos, said, self.own_words, self.jieba))
            for word, (token, pos) in zip(words, tagged, strict=True)]
        terms = whole_terms([token for token, _ in tagged], candidate.__getitem__,
                            lambda i: self._joins(*tagged[i]),
                            lambda i: modifier_char(*tagged[i]))
        in_term = {k for end, start in terms.items() for k in range(start, end)}
        grown = {"".join(t for t, _ in tagged[start:end + 1]) for end, start in terms.items()}
        phrases, everyday_phrases = repeated_phrases(tagged, words, self.stopwords)
        latin, inside = latin_phrases(raw, words, self.stopwords)
        for end, found in latin.items():
            phrases[end] = [*phrases.get(end, []), *found]
        out: list[str] = []
        previous: tuple[str, str] | None = None
        for end, (token, pos) in enumerate(tagged):
            if end in terms:  # the whole term where the text says it, not its pieces
                token, pos = "".join(t for t, _ in tagged[terms[end]:end + 1]), "nz"
            # a word, but no notation of single letters (`C-a`, `e.g`, `C`) for a tag
            keep = (end not in in_term and (end in terms or (
                candidate[end] and not notation(token) and not _ADDRESS.match(token)
                and self._term_like[token])))
            if keep and end not in inside:
                out.append(token)
                if (previous and pos in _COMPOUND_POS and previous[1] in _COMPOUND_POS
                        and _CJK.search(token) and _CJK.search(previous[0])
                        and len(previous[0]) + len(token) <= 6 and not lone_char(previous[0])):
                    out.append(previous[0] + token)
                    if everyday_word(previous[0]) and everyday_word(token):
                        everyday.add(out[-1])
            if end in phrases:
                out.extend(p for p in phrases[end] if (not out or p != out[-1])
                           and not any(across(p, term) for term in grown))
            previous = (token, pos) if keep else None
        ends = functools.cache(lambda: {0, *itertools.accumulate(len(t) for t, _ in raw)})
        longer = glued(set(out), text, self._noun_char, ends)
        out = [longer.get(c, c) for c in out]
        joined = grown | {p for found in phrases.values() for p in found} | set(longer.values())
        out, joined = with_title_terms(text, raw, ends, out, joined)
        names = {token for token, pos in tagged if pos in _NAME_POS}
        everyday |= everyday_phrases
        pieces = (pieces_of(joined, grown, set(out) - names, text)
                  | bound_to_names(set(out), text, self.jieba))
        actions = set(filter(self._action.__getitem__, {t for t, _ in tagged}))
        return Candidates([c for c in out if c not in pieces], joined, names, everyday, actions)

    def _noun_char(self, char: str) -> bool:
        """A character jieba tags as a noun, a name, an abbreviation or a suffix (涡, 图, 性;
        not 的, 用, 中): one that may be part of a term, not a word of a clause."""
        return self.jieba.tag(char)[0][1] in _NOUN_CHAR_POS

    def _joins(self, token: str, pos: str) -> bool:
        return token.casefold() not in self.stopwords and joins(token, pos, self.jieba)
