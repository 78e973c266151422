"""One identity for labels: category names, aliases and tags compare by this key."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

MAX_TAG_CHARS = 40
# what would make a tag markup, an entity or a link on a page that renders it, or a
# formula in a spreadsheet: `<b>`, `&lt;`, `http://`, `javascript:alert(1)`, `=cmd|calc`
_MARKUP = re.compile(r"[<>\"'`{}]|&#?\w+;|://|^(?i:javascript|vbscript|data|file):|^[=+\-@]")
_WORD_SEPARATORS = re.compile(r"[\s\-_]+")
_VERSION = re.compile(r"[\s\-_]*v?\d+(?:\.\d+)*$")  # `pcie4`, "vue 3", `ios-17.2`, `iosv2`
# a trademark sign is no part of a name: NFKC would spell "Core™" `CoreTM` (a tag readers
# see as odd) and "Wi-Fi℠" `Wi-FiSM`; "Java®" is Java
_MARK_SIGNS = "\u2122\u2120\u00ae"
_MARKS = str.maketrans("", "", _MARK_SIGNS)


@lru_cache(maxsize=200_000)
def label_key(label: str) -> str:
    """Width-, case- and whitespace-insensitive (cached: the same words recur)."""
    return text_key(label)


def text_key(text: str) -> str:
    """`label_key` of an article's text, not cached: each text is new, and a cache of
    200,000 of them would hold gigabytes on a long run."""
    return " ".join(nfkc(text).casefold().split())


def nfkc(text: str) -> str:
    """NFKC (full-width ＡＰＩ is API), without trademark signs: one spelling for a text and
    for every label said in it."""
    if any(mark in text for mark in _MARK_SIGNS):  # rare; `translate` reads a long text
        text = text.translate(_MARKS)  # at ~80 ns a character, `in` at under 1
    return unicodedata.normalize("NFKC", text)


def hidden_character(text: str, allowed: str = "") -> str | None:
    """The first control, format (zero-width, bidi), surrogate, private-use or unassigned
    character of `text` not in `allowed`: such characters are never meant in a label, and
    they hide, reorder or garble what a terminal or a page shows."""
    return next((ch for ch in text
                 if unicodedata.category(ch)[0] == "C" and ch not in allowed), None)


@lru_cache(maxsize=100_000)
def plain_tag(tag: str) -> str | None:
    """`tag` as plain text a site can render: `nfkc`, single spaces, no control or format
    characters, no markup, entities, links or script URLs, no formula start (`=`, `+`, `-`,
    `@`), at most `MAX_TAG_CHARS`; None if that leaves nothing worth showing. Cached: the
    tagger asks ~20 times an article, and a site's tags recur."""
    text = " ".join(nfkc(tag).split())
    if (not text or len(text) > MAX_TAG_CHARS or _MARKUP.search(text)
            or hidden_character(text) is not None
            or not any(ch.isalnum() for ch in text)):
        return None
    return text


def plain_tags(tags: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the tags `plain_tag` keeps, once each by `label_key`, in order; those it refuses)."""
    kept: dict[str, str] = {}
    refused = []
    for tag in tags:
        plain = plain_tag(tag)
        if plain is None:
            refused.append(tag)
        else:
            kept.setdefault(label_key(plain), plain)
    return list(kept.values()), refused


def _singular(word: str) -> str:
    for end, replacement in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"),
                             ("shes", "sh")):
        if word.endswith(end):
            return word[: -len(end)] + replacement
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def near_duplicates(a: str, b: str, uses: Mapping[str, int]) -> bool:
    """Two tag keys a reader sees as one: equal but for spaces, hyphens or underscores
    (`tableview`, "table view", `table-view`: one concept, two tag pages), a plural, one a
    prefix of the other (Kube, Kubernetes; unless the site uses both as tags), one a word of
    the other (Web, Web Components; docker, docker-compose), or a Chinese tag inside the
    other."""
    if a == b or _joined(a) == _joined(b):
        return True
    if not (a.isascii() and b.isascii()):
        return a in b or b in a
    if (_singular(_joined(a)) == _singular(_joined(b))
            or _numeronym(a) == b or _numeronym(b) == a):
        return True
    short, long = sorted((a, b), key=len)
    if short in words_of(long):
        return True
    both_site_tags = uses.get(short, 0) >= 2 and uses.get(long, 0) >= 2
    if both_site_tags:
        return False
    # versions of one product (`pcie4`, "PCIe 6"): one tag page, unless the site has both
    if a[-1:].isdigit() or b[-1:].isdigit():  # else neither has a version: no regex
        unversioned = _VERSION.sub("", a)
        if len(unversioned) >= 3 and unversioned == _VERSION.sub("", b):
            return True
    return len(short) >= 3 and long.startswith(short)


def abbreviates(short: str, term: str, text: str) -> bool:
    """Whether `text` gives the Latin `short` in brackets right after the Chinese `term`, or
    after its first three characters or more (all keys): 手术部位感染(SSI), 过氧化物酶 (POD),
    备忘录(Memento) of 备忘录模式 are one concept, and readers strike the second out as a
    duplicate (rounds 5 and 8: our lists' `SSI`, `POD`, `Memento` beside the term)."""
    # every form ends in "(short)": one read of a long text where it says none, not six
    return (short.isascii() and not term.isascii() and f"({short})" in text
            and any(f"{term[:n]}({short})" in text or f"{term[:n]} ({short})" in text
                    for n in range(len(term), min(len(term), 3) - 1, -1)))


def translates(name: str, term: str, text: str) -> bool:
    """Whether `text` gives the Chinese `term` in brackets right after the Latin `name` (all
    keys): Prometheus(普罗米修斯) is one tool, and the name is what the author writes."""
    return (name.isascii() and not term.isascii()
            and (f"{name}({term})" in text or f"{name} ({term})" in text))


def _joined(key: str) -> str:
    """A key without the separators between its words: how `tableview` and "table view"
    compare."""
    return _WORD_SEPARATORS.sub("", key)


def words_of(key: str) -> list[str]:
    """The words of a tag key: `docker-compose` and `docker compose` both have two."""
    return _WORD_SEPARATORS.split(key)


def _numeronym(word: str) -> str:
    """k8s for kubernetes, i18n for internationalization."""
    return f"{word[0]}{len(word) - 2}{word[-1]}" if len(word) > 3 and word.isalpha() else word


def mentions(text: str, key: str) -> bool:
    """Whether `text` says `key` (both keys): where the key is Latin, as a whole word or its
    plural, and from 4 letters on also spelt with or without spaces, dots, hyphens or
    underscores between its letters (`asp.net` says `aspnet`, `sql server` `sqlserver`);
    anywhere where it is Chinese (which has no spaces to find words by)."""
    if not key.isascii():
        return key in text
    if key in text and next(_whole_words(text, key), None) is not None:
        return True
    bare = _SPELLING_SEPARATORS.sub("", key)
    return (len(bare) >= _MIN_RESPELT and bare in _bare(text)
            and _respelt(bare).search(text) is not None)


def times_said(text: str, key: str) -> int:
    """How often `text` says `key` (both keys) as a whole word, or anywhere where it is
    Chinese (`mentions`, counted; respellings not counted)."""
    return sum(1 for _ in _whole_words(text, key)) if key.isascii() else text.count(key)


def places_said(text: str, key: str) -> list[int]:
    """Where `text` says `key` (both keys), as `times_said` counts them."""
    if key.isascii():
        return list(_whole_words(text, key))
    out, at = [], text.find(key)
    while at >= 0:
        out.append(at)
        at = text.find(key, at + len(key))
    return out


_SPELLING_SEPARATORS = re.compile(r"[\s.\-_]+")
_MIN_RESPELT = 4  # shorter keys respelt would match too much ("a i" for "ai")
# `libc` is no word of "libc++", nor `f` of "f#" (but `editme` is one of "###editme###")
_WORD_END = r"(?![a-z0-9]|\+\+|#(?!#))"


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _whole_words(text: str, key: str) -> Iterator[int]:
    """Where `text` says `key` as a whole word or its plural, left to right and never
    overlapping: `(?<![a-z0-9])key(?:e?s)?` then `_WORD_END`, found with `str.find`. A
    pattern per key cost a `re.compile` for every word new to the process, 1-3 ms of each
    article's time."""
    start = text.find(key) if key else -1
    while start >= 0:
        end = -1
        if start == 0 or text[start - 1] not in _WORD_CHARS:
            after = start + len(key)
            end = next((after + len(s) for s in ("es", "s", "") if text.startswith(s, after)
                        and _ends_word(text, after + len(s))), -1)
        if end >= 0:
            yield start
        start = text.find(key, end if end >= 0 else start + 1)


def _ends_word(text: str, at: int) -> bool:
    """`_WORD_END` at `at`, without a regex."""
    if at >= len(text):
        return True
    return not (text[at] in _WORD_CHARS or text.startswith("++", at)
                or (text[at] == "#" and not text.startswith("##", at)))


@lru_cache(maxsize=100_000)
def _respelt(bare: str) -> re.Pattern[str]:
    letters = r"[\s.\-_]?".join(map(re.escape, bare))
    return re.compile(rf"(?<![a-z0-9]){letters}(?:e?s)?{_WORD_END}")


@lru_cache(maxsize=4)
def _bare(text: str) -> str:
    """The text without separators, once per text: a quick test before the regex."""
    # `str.split` drops what `\s` matches (both `str.isspace`), ~5x faster than the regex
    return "".join(text.split()).replace(".", "").replace("-", "").replace("_", "")


def only_inside_words(text: str, key: str) -> bool:
    """A Latin key the text (a key) has only as a piece of longer words: `cod` in "code
    agent", `git` in "github"."""
    return key.isascii() and key in text and not mentions(text, key)
