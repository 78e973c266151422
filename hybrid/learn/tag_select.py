"""Which of an article's candidates become its tags, in which spelling, and why: the ranker's
best first, what is said in passing only where the ranker finds it likely, one tag per
concept (`_prefer` keeps the better of two spellings), and every strong candidate left out
with its reason, for `predict --explain`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hybrid.ingest.keys import (
    abbreviates,
    label_key,
    near_duplicates,
    plain_tag,
    translates,
    words_of,
)
from hybrid.learn.features import Features
from hybrid.learn.tag_rules import Candidate

_LIKELY = 0.5  # the ranker's probability such a tag needs to be shown: more likely right than not
_MIN_TAGS = 3  # a list shorter than this takes what the ranker doubts (see `_FILL_FLOOR`)
# The ranker's probability a passing mention needs to be shown, on any list with room:
# SharePoint said once in a post on MOSS (0.8), `crypto` once in one on ECDSA (0.4). Readers
# kept 12 of 13 such tags that had been left off lists of three or four. Without a ranker,
# a passing mention only fills a list shorter than `_MIN_TAGS`.
_WEAK_FLOOR = 0.3
# Past `_MIN_TAGS`, a tag needs a ranker probability of this share of the site's base rate
# (the share of candidates that are the authors' tags): a site whose authors give two tags an
# article has lower probabilities throughout than one whose authors give five. Readers
# accepted a third of the tags below a tenth of jiegec's rate, and most above it.
_FILL_FLOOR = 0.25
# A site tag its authors mostly put on articles that say it (`docker`, `vcsa`: more than this
# share of them), on an article that never says it, needs this probability: neighbours that
# carry it are no support (readers struck out `docker`, `debian` and `vcsa` shown so), while
# a tag its authors put on articles that do not say it (`weeklysharing`, 读书笔记) may be
# carried by them. Only for tags on at least `_SAID_USES` articles: fewer say no habit.
_SAID_SHARE, _UNSAID_FLOOR, _SAID_USES = 0.6, 0.1, 3
# A site tag said by nearly every article its authors put it on (`MongoDB`, `verilator`,
# 脑梗死: more than this share, on at least `_ALWAYS_SAID_USES`), on an article that never
# says it, is not shown however likely the ranker finds it: the articles that carry it are
# about it, and this one is not (round 5: 8 such tags of our lists rejected, 2 accepted)
_ALWAYS_SAID, _ALWAYS_SAID_USES = 0.8, 2


@dataclass
class Pool:
    """One article's candidates and what its neighbours and the site say of them: what
    the tagger ranks and `Chooser.select` picks from."""

    doc: Features
    candidates: list[Candidate]
    votes: dict[str, float]
    shares: dict[str, float]
    close: dict[str, int]  # how many of the tagger's `_CLOSE` nearest, if close, carry each tag
    dropped: list[Candidate]  # the strongest candidates that may not be tags here, and why
    site_scores: np.ndarray  # the site tag model's score of each of its tags


@dataclass
class TagScore:
    tag: str
    score: float
    from_text: bool
    neighbour_vote: float
    reason: str = ""  # why a reader would take it: where the article says it, or who tags it


@dataclass
class DroppedTag:
    tag: str
    score: float | None  # the ranker's, for a candidate that got so far
    reason: str  # why it is no tag of this article


class _Shown(NamedTuple):
    """A chosen tag as near-duplicates are judged: by key and as shown."""

    key: str
    shown: str  # the key of the tag as shown
    said: bool  # the text says it


@dataclass
class Chooser:
    """What choosing needs of a fitted tagger."""

    display: Mapping[str, str]  # the site's spelling of each of its tags
    spelling: Mapping[str, str]  # the site's articles' spelling of each word
    uses: Mapping[str, int]  # articles each site tag is on
    said: Mapping[str, int]  # of those, the articles whose text says it (`mentions`)
    base_rate: float  # the share of ranked candidates that were the authors' tags
    learned: bool  # the scores are a learned ranker's probabilities
    n_tags: int
    vote: int  # the column of the neighbours' vote in a pool's feature rows
    explained: int  # dropped candidates kept, for `predict --explain`

    def select(self, pool: Pool, rows: np.ndarray, scores: np.ndarray
               ) -> tuple[list[TagScore], list[DroppedTag]]:
        """Best first, each tag one a reader would keep: plain text, supported by the article
        or more likely right than not, and no near-duplicate of a tag already chosen, by key
        or as shown (the site's `webapi`, shown "Web API", and "API" are one; which stays:
        `_prefer`)."""
        chosen: list[TagScore] = []
        keys: list[_Shown] = []  # of each chosen
        dropped = [DroppedTag(c.surface, None, c.reason or "") for c in pool.dropped]
        weak = np.array([c.weak for c in pool.candidates], dtype=bool)
        for j in np.lexsort((-scores, weak)):  # the weak last
            c = pool.candidates[j]
            display = plain_tag(self.display.get(c.key) or self.spelling.get(c.key)
                                or _spelling(c.surface, pool.doc.title))
            why = self._skip(c, float(scores[j]), len(chosen), display)
            if why is None:
                new = _Shown(c.key, label_key(display), c.first >= 0 or c.mentioned)
                twins = [n for n, old in enumerate(keys) if any(
                    near_duplicates(a, b, self.uses)
                    for a, b in ((old.key, new.key), (old.shown, new.shown))) or any(
                    glossed(a, b, pool.doc.text)
                    for a, b in ((old.shown, new.shown), (new.shown, old.shown)))]
                if not twins:
                    keys.append(new)
                    chosen.append(TagScore(display, float(scores[j]), c.first >= 0,
                                           float(rows[j, self.vote]), self._why(c, pool)))
                    if len(chosen) == self.n_tags:
                        break
                    continue
                why = f"the same as {chosen[twins[0]].tag}"
                if all(self._prefer(new, keys[n], pool.doc.text) for n in twins):
                    why = f"the same as {display}, shown instead"
                    display, chosen[twins[0]].tag = chosen[twins[0]].tag, display
                    keys[twins[0]] = new
                    for n in reversed(twins[1:]):
                        del chosen[n], keys[n]
            if len(dropped) < 2 * self.explained:
                dropped.append(DroppedTag(display or c.surface, round(float(scores[j]), 4), why))
        return chosen, dropped

    def _skip(self, c: Candidate, score: float, shown: int, display: str | None) -> str | None:
        """Why `c`, a candidate that may be a tag here, is not shown, or None."""
        if display is None:
            return "no plain text"
        if c.weak and self.learned and score < _WEAK_FLOOR:
            return "said in passing, and the ranker doubts it"
        if c.weak and shown >= _MIN_TAGS and not self.learned:
            return "said in passing, and the list has enough tags"
        if (self.learned and shown >= _MIN_TAGS and score < _FILL_FLOOR * self.base_rate
                and not c.central):
            return "the ranker doubts it, and the list has enough tags"
        if not c.supported and score < _LIKELY:
            return "the text does not support it, and it is not likely enough"
        uses = self.uses.get(c.key, 0)
        if c.first >= 0 or c.mentioned:
            return None
        said = self.said.get(c.key, 0)
        if ((uses >= _SAID_USES and score < _UNSAID_FLOOR and said > _SAID_SHARE * uses)
                or (uses >= _ALWAYS_SAID_USES and said > _ALWAYS_SAID * uses)):
            return "the site's articles with this tag say it, and this one does not"
        return None

    def _why(self, c: Candidate, pool: Pool) -> str:
        """What made `c` a tag, in words, for `predict --explain`."""
        where = "named in the title, description or a heading" if c.named else (
            f"said {c.said} times" if c.said > 1 else "said once" if c.said else "not said")
        close = pool.close.get(c.key, 0)
        site = self.uses.get(c.key, 0)
        tagged = (f"; the site's tag on {site} article{'s' * (site > 1)}, {close} of the "
                  "closest carry it") if site else ""
        return where + tagged + ("; said in passing, and likely" if c.weak else "")

    def _prefer(self, new: _Shown, old: _Shown, text: str) -> bool:
        """Of two near-duplicates: a phrase over one of its words ("Web Components" over
        "Web"), unless only the word is said (the site's book tag "CLR via C#" on an article
        that says C#); of two spellings of one English word (plural, case, abbreviation), the
        one the site uses more; of two Chinese terms one inside the other (沥青, 沥青混合料),
        the longer where the text never says the shorter outside it (博客 of 博客系统), else
        the ranker's choice, which came first; of a term and its abbreviation in brackets
        (手术部位感染(SSI)), the term; of a name and its translation in brackets
        (Prometheus(普罗米修斯)), the name."""
        if abbreviates(old.shown, new.shown, text) or abbreviates(new.shown, old.shown, text):
            return not new.shown.isascii()
        if translates(old.shown, new.shown, text) or translates(new.shown, old.shown, text):
            return new.shown.isascii()
        if old.shown in words_of(new.shown):
            return new.said or not old.said
        if new.shown in words_of(old.shown):
            return new.said and not old.said
        if not (new.shown.isascii() and old.shown.isascii()):
            short, long = sorted((new.shown, old.shown), key=len)
            return (new.shown == long and short in long
                    and text.count(short) == text.count(long) > 0)
        return self.uses.get(new.key, 0) > self.uses.get(old.key, 0)


def glossed(a: str, b: str, text: str) -> bool:
    """Whether `text` writes one of two tags (keys) with the other in brackets after it."""
    return abbreviates(a, b, text) or translates(a, b, text)


def site_spellings(found: Sequence[dict[str, Candidate]]) -> dict[str, str]:
    """For each word the site's articles spell more than one way (`Prometheus`,
    `prometheus`), the spelling most of them use: one tag page per concept."""
    uses = Counter((key, c.surface) for cands in found for key, c in cands.items()
                   if c.surface != key)
    plain = Counter(key for cands in found for key, c in cands.items() if c.surface == key)
    best: dict[str, tuple[int, str]] = {}
    for (key, surface), n in uses.items():
        if n > best.get(key, (plain.get(key, 0), key))[0]:
            best[key] = (n, surface)
    return {key: surface for key, (_, surface) in best.items()}


def _spelling(surface: str, title: str) -> str:
    """A new tag as the title spells it ("Docker Compose", where the commands in the body say
    `docker compose`), else as the text first did."""
    if surface.lower() not in title.lower():  # mostly: then no pattern is compiled
        return surface
    found = re.search(re.escape(surface), title, re.IGNORECASE)
    return found.group(0) if found else surface
