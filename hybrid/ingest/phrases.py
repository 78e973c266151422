"""Phrases of several words that jieba gives apart: a run of Chinese content words the text
repeats (大角度机动, Lyapunov函数), and an English term of 2-3 words ("Spring Boot", "GitHub
Pages"). Keywords are often such compounds, and authors repeat their keywords.

`Segmenter.candidates` adds them to the single words; this module only finds them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from operator import itemgetter

from hybrid.ingest import commonness
from hybrid.ingest.shapes import notation
from hybrid.ingest.terms import COMMON_WORD, clause_verb, everyday_word, lone_char

CANDIDATE_POS = {"n", "nr", "ns", "nt", "nz", "nw", "vn", "eng", "l", "j", "an"}
# words that may start or continue a phrase: content words, adjectives, distinguishing
# words and verbs (大角度机动, 强化学习)
_PHRASE_POS = CANDIDATE_POS | {"a", "b", "ng", "nrt", "v"}
_MAX_PHRASE_CHARS = 12
LATIN = re.compile(r"^\.?[a-z0-9][a-z0-9.+#_\-]*$", re.IGNORECASE)  # .NET too
NUMBERISH = re.compile(r"^[\d.,:%+\-/][\d.,:%+\-/x]*$", re.IGNORECASE)  # 1920x1080, not x86
_CJK = re.compile(r"[\u4e00-\u9fff]")
_PARTS = re.compile(r"[._\-]")


def _phrase_part(token: str, stopwords: frozenset[str]) -> bool:
    return (bool(_CJK.search(token) or LATIN.match(token)) and not NUMBERISH.match(token)
            and token.casefold() not in stopwords)


def repeated_phrases(tagged: list[tuple[str, str]], words: list[str | None],
                     stopwords: frozenset[str]) -> tuple[dict[int, list[str]], set[str]]:
    """Phrases of 2-3 adjacent content words ending in a noun or name, seen at least twice
    and not only as part of a longer such phrase; keyed by the index of their last word.
    Also the phrases made of everyday words only (研究进展): phrases, not terms."""
    spans: dict[str, list[int]] = defaultdict(list)
    everyday: set[str] = set()
    for end, (_, pos) in enumerate(tagged):
        if pos not in CANDIDATE_POS or words[end] is None:
            continue
        start = end
        while (start > 0 and end - start < 2 and tagged[start - 1][1] in _PHRASE_POS
               and _phrase_part(tagged[start - 1][0], stopwords)):
            if clause_verb(*tagged[start - 1]):
                break  # a clause (纳洛酮治疗急性, 提高公司), not a term
            start -= 1
            phrase = "".join(t for t, _ in tagged[start:end + 1])
            if len(phrase) <= _MAX_PHRASE_CHARS and not lone_char(tagged[start][0]):
                spans[phrase].append(end)
                if all(everyday_word(t) for t, _ in tagged[start:end + 1]):
                    everyday.add(phrase)
    repeated = {p: ends for p, ends in spans.items() if len(ends) > 1}
    out: dict[int, list[str]] = defaultdict(list)
    for phrase, ends in repeated.items():
        if not any(phrase != other and phrase in other and len(o_ends) == len(ends)
                   for other, o_ends in repeated.items()):
            for end in ends:
                out[end].append(phrase)
    return out, everyday


def latin_phrases(raw: list[tuple[str, str]], words: list[str | None],
                  stopwords: frozenset[str]) -> tuple[dict[int, list[str]], set[int]]:
    """English terms of 2-3 words, one space apart, that the text repeats or writes as a
    name ("Web Components", "Spring Boot", "GitHub Pages"): jieba gives each word alone,
    and alone they say less. Keyed by the index of their last word; also the indexes of
    later words the text only ever says inside such a term (`Pages` of "GitHub Pages" is
    no tag on its own; `GitHub` may be)."""
    def word(i: int) -> bool:
        """A Latin word, not a number or a notation (`t-3` of a formula, the flag `-e`;
        a capital letter may end a name: "Type C")."""
        token, pos = raw[i]
        return (pos == "eng" and bool(LATIN.match(token)) and not NUMBERISH.match(token)
                and not (notation(token) and (_PARTS.search(token) or token.islower())))

    def spaced_word(space: int, at: int) -> bool:
        return 0 <= at < len(raw) and raw[space][0] == " " and word(at)

    def term(phrase: str) -> bool:
        """A term's later words are plain words (Spring Boot, GitHub Pages); names with
        digits or inner capitals make a list (Laravel11 InertiaJs Vue3); and words of
        everyday English in lower case make a piece of a sentence (`lock failed`,
        `properly initialized`), not a term (`functional programming`)."""
        words = phrase.split()
        return (all(w.isalpha() and (w[1:].islower() or w.isupper()) for w in words[1:])
                and not (phrase.islower() and any(commonness.zipf(w) >= COMMON_WORD
                                                  for w in words)))

    def name(start: int, end: int) -> bool:
        """Capitalised words alone amid Chinese: a name, not a piece of an English
        sentence."""
        return (all(raw[i][0][0].isupper() for i in range(start, end + 1, 2))
                and not (start >= 2 and spaced_word(start - 1, start - 2))
                and not (end + 2 < len(raw) and spaced_word(end + 1, end + 2)))

    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    surfaces: dict[str, str] = {}  # the first spelling, for every repeat of the term
    for end, (_, pos) in enumerate(raw):
        if pos != "eng" or words[end] is None or not word(end):
            continue
        start, run = end, [raw[end][0]]
        while (len(run) < 3 and start >= 2 and raw[start - 1][0] == " " and word(start - 2)
               and raw[start - 2][0].casefold() not in stopwords):
            start -= 2
            run.insert(0, raw[start][0])
            phrase = " ".join(run)
            surfaces.setdefault(phrase.casefold(), phrase)
            spans[phrase.casefold()].append((start, end))
    out: dict[int, list[str]] = defaultdict(list)
    covered: dict[str, set[int]] = defaultdict(set)
    for key, places in spans.items():
        phrase = surfaces[key]
        if term(phrase) and (len(places) > 1
                             or any(name(start, end) for start, end in places)):
            for start, end in places:
                out[end].append(phrase)
                for i in range(start + 2, end + 1, 2):  # the first word may stand alone
                    covered[raw[i][0].casefold()].add(i)
    said = Counter(map(str.casefold, map(itemgetter(0), raw))) if covered else Counter()
    return out, {i for w, places in covered.items() if len(places) == said[w]
                 for i in places}
