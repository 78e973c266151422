"""Keyword tags: candidates from the text, scored as KeyBERT scores them (each candidate's
embedding against the article's, both precomputed), merged with the tags of the nearest
labelled articles (FAISS), and ranked by a small model learned from the site's own tagging,
so tags reuse the site's vocabulary where it fits and new keywords still appear.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import faiss
import numpy as np
from sklearn.base import BaseEstimator

from hybrid import data
from hybrid.embed import Embedder
from hybrid.ingest.keys import (
    label_key,
    mentions,
    near_duplicates,
    plain_tag,
    words_of,
)
from hybrid.learn.features import Features
from hybrid.learn.tag_ranker import tag_ranker

_AGREEING_NEIGHBOURS = 2  # of the `_CLOSE` nearest: two articles, to carry a tag the text lacks
_CLOSE = 5
_SHARED = 2  # neighbours that carry a tag the article does not otherwise support, to rank it
_LIKELY = 0.5  # the ranker's probability such a tag needs to be shown: more likely right than not
# The ranker learns from this many candidates that are an article's tag and as many that are
# not, of this many in all (its trees hold a tenth out); with fewer, the untrained scoring ranks.
_MIN_RANKER_TAGS, _MIN_RANKER_CANDIDATES = 5, 20
_YEAR = re.compile(r"^(19|20)\d\d$")
_SEPARATORS = str.maketrans("", "", " -_")  # what a spelling of a tag may differ by
FEATURE_NAMES = ["keybert_sim", "log_tf", "in_title", "first_pos", "idf",
                 "in_vocab", "log_tag_count", "prior", "neighbour_vote", "neighbour_share",
                 "in_text", "is_latin", "n_chars", "is_phrase", "mentioned", "close_share"]


@dataclass
class TagScore:
    tag: str
    score: float
    from_text: bool
    neighbour_vote: float


@dataclass
class _Candidate:
    key: str
    surface: str
    count: int = 0
    first: int = 0  # position of first occurrence; -1 for a neighbour's tag not in the text
    phrase: bool = False  # joined from words the text repeats together
    supported: bool = True  # by the text or agreeing close neighbours; else it must be likely
    mentioned: bool = False  # the text says it (a neighbour's tag too)


class _Shown(NamedTuple):
    """A chosen tag as near-duplicates are judged: by key and as shown."""

    key: str
    shown: str  # the key of the tag as shown
    said: bool  # the text says it


@dataclass
class _Pool:
    doc: Features
    candidates: list[_Candidate]
    votes: dict[str, float]
    shares: dict[str, float]
    close: dict[str, int]  # how many of the `_CLOSE` nearest, if close, carry each tag


class TagSuggester(BaseEstimator):
    """`fit(X, tags)` learns the vocabulary, neighbour index and ranker; `suggest(X)` ranks."""

    def __init__(self, n_tags: int = 5, n_neighbours: int = 10, max_candidates: int = 30,
                 aliases: dict[str, str] | None = None,
                 embedder: Embedder | None = None, max_ranker_articles: int = 2000,
                 random_state: int = 0) -> None:
        self.n_tags = n_tags
        self.max_ranker_articles = max_ranker_articles
        self.n_neighbours = n_neighbours
        self.max_candidates = max_candidates
        self.aliases = aliases
        self.embedder = embedder
        self.random_state = random_state

    def __getstate__(self) -> dict:
        # The embedder (model weights) and the FAISS index are saved by HybridModel.
        return {**self.__dict__, "embedder": None, "index_": None, "_canonical": {}}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__({"_canonical": {}, **state})

    def canonical(self, tag: str) -> str:
        """The key a tag counts under: its alias's, else the site's most used spelling of it
        up to spaces, hyphens and underscores between words (`docker compose` is the site's
        `docker-compose`; `C-a`, of single letters, is not the site's `CA`). Remembered per
        spelling: every token of every article asks."""
        key = self._canonical.get(tag)
        if key is None:
            key = label_key(tag)
            key = self.alias_map_.get(key, key)
            if min(map(len, words_of(key))) > 1:
                key = self.spellings_.get(key.translate(_SEPARATORS), key)
            self._canonical[tag] = key
        return key

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X: Sequence[Features], tags: Sequence[Sequence[str]]) -> TagSuggester:
        self._canonical: dict[str, str] = {}
        self.alias_map_ = {label_key(k): label_key(v) for k, v in (self.aliases or {}).items()}
        self.spellings_ = {}
        uses = Counter(self.alias_map_.get(k, k) for ts in tags for t in ts if (k := label_key(t)))
        for key, _ in sorted(uses.items(), key=lambda kv: kv[1]):  # the most used comes last
            self.spellings_[key.translate(_SEPARATORS)] = key
        gold = [list(dict.fromkeys(self.canonical(t) for t in ts if label_key(t))) for ts in tags]
        surfaces: dict[str, Counter] = defaultdict(Counter)
        for ts in tags:
            for t in ts:
                if label_key(t):
                    surfaces[self.canonical(t)][t.strip()] += 1
        alias_display = {label_key(v): v for v in (self.aliases or {}).values()}
        self.display_ = {k: alias_display.get(k, c.most_common(1)[0][0])
                         for k, c in surfaces.items()}
        self.phrases_ = sorted(k for k in self.display_ if " " in k)  # found by their text
        self.tag_count_ = Counter(k for g in gold for k in g)
        self.train_tags_ = gold
        self.n_docs_ = len(X)
        text_candidates = [self._text_candidates(d) for d in X]
        self.df_ = Counter(k for cands in text_candidates for k in cands)
        self.seen_ = Counter()
        self.hits_ = Counter()
        for cands, g in zip(text_candidates, gold, strict=True):
            self.seen_.update(cands.keys())
            self.hits_.update(k for k in cands if k in g)
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        self.index_ = faiss.IndexFlatIP(embeddings.shape[1])
        self.index_.add(embeddings)
        # The ranker learns from a bounded sample of articles: searching every article's
        # neighbours would make training quadratic in the corpus.
        sample = np.arange(len(X))
        if len(X) > self.max_ranker_articles:
            sample = np.sort(np.random.default_rng(self.random_state).choice(
                len(X), self.max_ranker_articles, replace=False))
        sims, ids = self._neighbours(embeddings[sample], exclude=sample)
        # "close" is relative to the site: as similar as the typical article's 5th neighbour
        self.close_similarity_ = (float(np.median(sims[:, min(_CLOSE, sims.shape[1]) - 1]))
                                  if sims.size else 0.0)
        pools = [self._pool(X[i], text_candidates[i], sims[n], ids[n])
                 for n, i in enumerate(sample)]
        sample_gold = [gold[i] for i in sample]
        rows, labels = [], []
        for start in range(0, len(pools), 256):
            batch = pools[start:start + 256]
            tables = self._tables(batch, sample_gold[start:start + 256])
            for pool, table, g in zip(batch, tables, sample_gold[start:start + 256], strict=True):
                rows.append(table)
                labels.extend(int(c.key in g) for c in pool.candidates)
        labels_arr = np.array(labels, dtype=int)
        self.ranker_ = None
        if (np.bincount(labels_arr, minlength=2).min() >= _MIN_RANKER_TAGS
                and len(labels_arr) >= _MIN_RANKER_CANDIDATES):
            self.ranker_ = tag_ranker(self.random_state).fit(np.vstack(rows), labels_arr)
        return self

    def _score(self, table: np.ndarray) -> np.ndarray:
        """The learned ranker; without enough tags to learn it from, KeyBERT similarity
        weighted by tf-idf (plain keyword extraction)."""
        if not len(table):
            return np.zeros(0)
        if self.ranker_ is not None:
            return self.ranker_.predict_proba(table)[:, 1]
        column = {name: table[:, i] for i, name in enumerate(FEATURE_NAMES)}
        return column["keybert_sim"] * column["log_tf"] * column["idf"]

    # ---- shared candidate table ----------------------------------------------------------
    def _text_candidates(self, doc: Features) -> dict[str, _Candidate]:
        found: dict[str, _Candidate] = {}
        for pos, token in enumerate(doc.candidates):
            key = self.canonical(token)
            cand = found.get(key)
            if cand is None:
                cand = found[key] = _Candidate(key, token, 0, pos, token in doc.phrases)
            cand.count += 1
        if self.phrases_:  # the site's multi-word tags ("Spring Boot") the text says
            for key in self.phrases_:
                if key not in found and (n := doc.text.count(key)):
                    found[key] = _Candidate(key, self.display_[key], n, len(doc.candidates),
                                            True)
        return found

    def _neighbours(self, embeddings: np.ndarray, exclude: np.ndarray | None = None):
        """`exclude`: each query's own row in the index (training), never its own neighbour."""
        k = min(self.n_neighbours + int(exclude is not None), self.index_.ntotal)
        sims, ids = self.index_.search(np.ascontiguousarray(embeddings, dtype=np.float32), k)
        if exclude is not None:
            keep = ids != exclude[:, None]
            sims = np.array([s[m][: k - 1] for s, m in zip(sims, keep, strict=True)])
            ids = np.array([i[m][: k - 1] for i, m in zip(ids, keep, strict=True)])
        return sims, ids

    def _pool(self, doc: Features, found: dict[str, _Candidate], sims: np.ndarray,
              ids: np.ndarray) -> _Pool:
        """The candidates a reader could be shown (see `_fits`): the doc's text candidates,
        shortlisted, and its neighbours' tags that the article supports or that `_SHARED`
        neighbours carry (those are shown only when likely). The rest are never embedded,
        scored or learned from: a long post brings many."""
        votes: dict[str, float] = defaultdict(float)
        shares: dict[str, int] = defaultdict(int)
        close: Counter = Counter()
        total = float(np.clip(sims, 0, None).sum()) or 1.0
        for rank, (sim, idx) in enumerate(zip(sims, ids, strict=True)):
            if idx < 0:
                continue
            for key in self.train_tags_[idx]:
                votes[key] += max(float(sim), 0.0) / total
                shares[key] += 1
                close[key] += rank < _CLOSE and sim >= self.close_similarity_
        candidates = self._shortlist(found.values(), lambda c: self._fits(c, close, doc.text))
        listed = {c.key for c in candidates}
        for key in votes:
            c = _Candidate(key, self.display_.get(key, key), 0, -1)
            if key not in listed and self._fits(c, close, doc.text) and (
                    c.supported or shares[key] >= _SHARED):
                candidates.append(c)
        return _Pool(doc, candidates, votes, {k: v / max(len(ids), 1) for k, v in shares.items()},
                     close)

    def _shortlist(self, found: Iterable[_Candidate], fits: Callable[[_Candidate], bool]
                   ) -> list[_Candidate]:
        """The `max_candidates` best by a plain tf-idf weight that fit: bounds the work on a
        long post, and only the ones looked at are checked."""
        def weight(c: _Candidate) -> float:
            return math.log1p(c.count) * math.log((self.n_docs_ + 1) / (self.df_.get(c.key, 0) + 1))
        ranked = sorted(found, key=weight, reverse=True)
        return list(itertools.islice(filter(fits, ranked), self.max_candidates))

    def _tables(self, pools: list[_Pool], gold: list[list[str]] | None = None) -> list[np.ndarray]:
        """FEATURE_NAMES rows per pool. With `gold` (training), each doc's own contribution is
        taken out of the corpus statistics: leave-one-out, so training matches prediction."""
        words = list(dict.fromkeys(c.surface for p in pools for c in p.candidates))
        if not words:
            return [np.zeros((0, len(FEATURE_NAMES))) for _ in pools]
        vectors = self._embed_words(words)
        row_of = {w: i for i, w in enumerate(words)}
        tables = []
        for n, pool in enumerate(pools):
            own = set(gold[n]) if gold is not None else set()
            in_doc = {c.key for c in pool.candidates if c.first >= 0} if gold is not None else set()
            n_docs = self.n_docs_ - (gold is not None)
            doc = pool.doc
            title = label_key(doc.title)
            n_tokens = max(len(doc.candidates), 1)
            sims = vectors[[row_of[c.surface] for c in pool.candidates]] @ doc.embedding
            rows = []
            for c, sim in zip(pool.candidates, sims, strict=True):
                mine = c.key in in_doc
                seen = self.seen_.get(c.key, 0) - mine
                hits = self.hits_.get(c.key, 0) - (mine and c.key in own)
                count = self.tag_count_.get(c.key, 0) - (c.key in own)
                df = self.df_.get(c.key, 0) - mine
                rows.append([
                    float(sim),
                    math.log1p(c.count),
                    float(c.key in title),
                    c.first / n_tokens if c.first >= 0 else 1.0,
                    math.log((n_docs + 1) / (df + 1)),
                    float(count > 0),
                    math.log1p(count),
                    (hits + 0.1) / (seen + 1.0),
                    pool.votes.get(c.key, 0.0),
                    pool.shares.get(c.key, 0.0),
                    float(c.first >= 0),
                    float(c.key.isascii()),
                    float(len(c.key)),
                    float(c.phrase),
                    float(c.mentioned),
                    pool.close.get(c.key, 0) / _CLOSE,
                ])
            tables.append(np.array(rows, dtype=float).reshape(-1, len(FEATURE_NAMES)))
        return tables

    def _embed_words(self, words: list[str]) -> np.ndarray:
        if self.embedder is None:
            raise RuntimeError("TagSuggester needs an embedder: load it through HybridModel")
        return self.embedder.embed(words)

    # ---- prediction ----------------------------------------------------------------------
    def suggest(self, X: Sequence[Features]) -> list[list[TagScore]]:
        if not X:
            return []
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        sims, ids = self._neighbours(embeddings)
        found = [self._text_candidates(d) for d in X]
        pools = [self._pool(d, found[i], sims[i], ids[i]) for i, d in enumerate(X)]
        tables = self._tables(pools)
        stacked = np.vstack(tables)
        scores = self._score(stacked)
        out, start = [], 0
        for pool, table in zip(pools, tables, strict=True):
            end = start + len(table)
            out.append(self._select(pool, table, scores[start:end]))
            start = end
        return out

    def neighbours(self, X: Sequence[Features]) -> tuple[np.ndarray, np.ndarray]:
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        return self._neighbours(embeddings)

    def _select(self, pool: _Pool, rows: np.ndarray, scores: np.ndarray) -> list[TagScore]:
        """Best first, each tag one a reader would keep: plain text, supported by the article
        or more likely right than not, and no near-duplicate of a tag already chosen, by key
        or as shown (the site's `webapi`, shown "Web API", and "API" are one; which stays:
        `_prefer`)."""
        vote = FEATURE_NAMES.index("neighbour_vote")
        chosen: list[TagScore] = []
        keys: list[_Shown] = []  # of each chosen
        for j in np.argsort(-scores, kind="stable"):
            c = pool.candidates[j]
            display = plain_tag(self.display_.get(c.key) or _spelling(c.surface, pool.doc.title))
            if display is None or (not c.supported and scores[j] < _LIKELY):
                continue
            new = _Shown(c.key, label_key(display), c.first >= 0 or c.mentioned)
            twins = [n for n, old in enumerate(keys) if any(
                near_duplicates(a, b, self.tag_count_)
                for a, b in ((old.key, new.key), (old.shown, new.shown)))]
            if twins:
                if all(self._prefer(new, keys[n], pool.doc.text) for n in twins):
                    chosen[twins[0]].tag, keys[twins[0]] = display, new
                    for n in reversed(twins[1:]):
                        del chosen[n], keys[n]
                continue
            keys.append(new)
            chosen.append(TagScore(display, float(scores[j]), c.first >= 0, float(rows[j, vote])))
            if len(chosen) == self.n_tags:
                break
        return chosen

    def _prefer(self, new: _Shown, old: _Shown, text: str) -> bool:
        """Of two near-duplicates: a phrase over one of its words ("Web Components" over
        "Web"), unless only the word is said (the site's book tag "CLR via C#" on an article
        that says C#); of two spellings of one English word (plural, case, abbreviation), the
        one the site uses more; of two Chinese terms one inside the other (沥青, 沥青混合料),
        the longer where the text never says the shorter outside it (博客 of 博客系统), else
        the ranker's choice, which came first."""
        if old.shown in words_of(new.shown):
            return new.said or not old.said
        if new.shown in words_of(old.shown):
            return new.said and not old.said
        if not (new.shown.isascii() and old.shown.isascii()):
            short, long = sorted((new.shown, old.shown), key=len)
            return (new.shown == long and short in long
                    and text.count(short) == text.count(long) > 0)
        return self.tag_count_.get(new.key, 0) > self.tag_count_.get(old.key, 0)

    def _fits(self, c: _Candidate, close: Counter, text: str) -> bool:
        """Whether `c` may be a tag here, and (`c.supported`) whether the article supports
        it. Never a piece of a longer word of the text; a year or a generic word only where
        the site uses it on similar articles (and a year, where the text says it). A word of
        the text is supported; a site tag only the neighbours bring, where the text mentions
        it or close neighbours agree, else only the ranker's confidence can show it."""
        agree = close.get(c.key, 0) >= _AGREEING_NEIGHBOURS
        # a word the segmenter cut from the text, under its own key and ending in letters or
        # digits (not `C#` of "C#3.0"), is said: no regex needed
        said = c.mentioned = ((c.first >= 0 and not c.phrase and c.key == label_key(c.surface)
                               and c.surface[:1].isalnum() and c.surface[-1:].isalnum())
                              or mentions(text, c.key))
        c.supported = c.first >= 0 or agree or said
        if not said and c.key.isascii() and c.key in text:  # `git` where the text says "github"
            return False
        if _YEAR.match(c.key):
            return agree and c.first >= 0
        if c.key in _generic_words():
            return agree
        return True


def _spelling(surface: str, title: str) -> str:
    """A new tag as the title spells it ("Docker Compose", where the commands in the body say
    `docker compose`), else as the text first did."""
    found = re.search(re.escape(surface), title, re.IGNORECASE)
    return found.group(0) if found else surface


@lru_cache(maxsize=1)
def _generic_words() -> frozenset[str]:
    lines = data.path("generic_tags.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))
