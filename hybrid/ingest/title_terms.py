"""Terms the title names and the text says again, whole. jieba cuts a term it does not know
into words that are no candidates alone (渤中/ns 凹陷/v, 狼牙/ns 刺/v, SiCp / Al 复合材料), and a
paper often says its subject in the title and once more in the abstract: too rarely for the
repeated-phrase rule. A run of title words the rest of the text says too, as long as it can
be, and trimmed of words that only link or place it, is the term the author uses."""

from __future__ import annotations

import re
from collections.abc import Callable

from hybrid.ingest.terms import MAX_TERM_CHARS, clause_verb

_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"^(?:[\u4e00-\u9fff]+|[A-Za-z0-9]+)$")
_LATIN = re.compile(r"[A-Za-z0-9]$")
# particles, prepositions, conjunctions, pronouns, interjections: they link words, they are
# in no term (的, 和, 基于, 对, 我们)
_LINK_POS = {"u", "uj", "ul", "uz", "ug", "uv", "ud", "p", "c", "y", "e", "o", "r", "rr", "rz"}
# locatives, numbers, measure words, adverbs, times: inside a term (空间后方交会) but never its
# first or last word (虚拟机内, 三种, 浅谈)
_EDGE_POS = {"f", "m", "mq", "q", "d", "t", "tg", "s"}
_MIN_CJK = 3


def with_title_terms(text: str, tagged: list[tuple[str, str]], ends: Callable[[], set[int]],
                     candidates: list[str], joined: set[str]) -> tuple[list[str], set[str]]:
    """`candidates` (in order of appearance) with the title's terms (`title_terms`) that are
    not among them, first where the title says them and again for each time the rest says
    them; and `joined`, the candidates made of several words, with them. `tagged`: the
    words of `text` and their parts of speech."""
    known = set(candidates)
    found = {t: n for t, n in title_terms(text, tagged, ends).items() if t not in known}
    again = [t for t, n in found.items() for _ in range(n)]
    return [*found, *candidates, *again], joined | set(found)


def title_terms(text: str, tagged: list[tuple[str, str]], ends: Callable[[], set[int]]
                ) -> dict[str, int]:
    """Each term of `text`'s first line (the title) that the rest of the text says too,
    with how often the rest says it as a word: a run of at least two title words, at least
    `_MIN_CJK` Chinese characters and not `_long`, the longest the rest says
    from its first word, in no run already found. A verb of everyday language (使用, 解决)
    or a linking word ends a run. `ends`: where the tokens of `text` start and end; a run
    the rest says only inside longer words (园路铺 of 园路铺设) is no term."""
    title, _, rest = text.partition("\n")
    words = _words(_first_line(tagged, len(title)))
    out: dict[str, int] = {}
    start = 0
    while start < len(words):
        end = start
        if words[start] is None:
            start += 1
            continue
        for last in range(start + 1, len(words)):
            if words[last] is None or _long(run := _join(words[start:last + 1])):
                break
            if run in rest:
                end = last
        run = _trimmed(words[start:end + 1])
        term = _join(run)
        if (len(run) > 1 and len(_CJK.findall(term)) >= _MIN_CJK
                and (said := _said(text, term, len(title) + 1, ends))):
            out[term] = said
        start = end + 1
    return out


def _first_line(tagged: list[tuple[str, str]], chars: int) -> list[tuple[str, str]]:
    """The words of a text's first `chars` characters (its title), cut off the words of
    the whole text rather than tagged again (a second pass over every title): jieba ends a
    block of words at a line break, so they are the words it gives the title alone (no word
    but a CR LF pair crosses a line break, and only its CR is the title's)."""
    out, at = [], 0
    for token, pos in tagged:
        if at >= chars:
            break
        out.append((token[:chars - at], pos))
        at += len(token)
    return out


def _long(term: str) -> bool:
    """Longer than a term: `MAX_TERM_CHARS` Chinese characters, or twice as many in all
    (SiCp/Al复合材料 is one term)."""
    return len(_CJK.findall(term)) > MAX_TERM_CHARS or len(term) > 2 * MAX_TERM_CHARS


def _said(text: str, term: str, start: int, ends: Callable[[], set[int]]) -> int:
    """How often `text` says `term` from `start` on, starting and ending between tokens."""
    count, at, bounds = 0, text.find(term, start), ends()
    while at >= 0:
        count += at in bounds and at + len(term) in bounds
        at = text.find(term, at + 1)
    return count


def _words(tagged: list[tuple[str, str]]) -> list[tuple[str, str] | None]:
    """The title's words, None where a run must end: punctuation, a space, a linking word,
    a one-character locative (中, 内) or an everyday verb. A `/` or `-` between two Latin
    words joins them (SiCp/Al)."""
    out: list[tuple[str, str] | None] = []
    for i, (token, pos) in enumerate(tagged):
        joiner = (token in {"/", "-"} and 0 < i < len(tagged) - 1
                  and _LATIN.search(tagged[i - 1][0]) is not None
                  and tagged[i + 1][0][:1].isascii() and tagged[i + 1][0][:1].isalnum())
        if joiner or (_WORD.match(token) and pos not in _LINK_POS
                      and not (pos == "f" and len(token) == 1) and not clause_verb(token, pos)):
            out.append((token, pos))
        else:
            out.append(None)
    return out


def _trimmed(run: list[tuple[str, str] | None]) -> list[tuple[str, str]]:
    """`run` without its edge words that are no part of a term: a suffix (k) first ends the
    word before it (型 of 1LZ-3型复式作业机)."""
    words = [w for w in run if w is not None]
    while words and (words[0][1] in _EDGE_POS or words[0][1] == "k"
                     or not words[0][0][:1].isalnum()):
        words.pop(0)
    while words and (words[-1][1] in _EDGE_POS or not words[-1][0][-1:].isalnum()):
        words.pop()
    return words


def _join(run: list[tuple[str, str] | None]) -> str:
    return "".join(w[0] for w in run if w is not None)
