"""Keyword tags: candidates from the text, scored as KeyBERT scores them (each candidate's
embedding against the article's, both precomputed), merged with the tags of the nearest
labelled articles (FAISS), and ranked by a small model learned from the site's own tagging,
so tags reuse the site's vocabulary where it fits and new keywords still appear.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

import faiss
import numpy as np
from sklearn.base import BaseEstimator

from hybrid.embed import Embedder
from hybrid.ingest import commonness
from hybrid.ingest.keys import label_key, mentions, words_of
from hybrid.learn.features import Features
from hybrid.learn.site_tags import SiteTagModel
from hybrid.learn.tag_ranker import article_key, fit_tag_ranker
from hybrid.learn.tag_rules import Candidate, verdict
from hybrid.learn.tag_select import Chooser, DroppedTag, Pool, TagScore, site_spellings

_AGREEING_NEIGHBOURS = 2  # of the `_CLOSE` nearest: two articles, to carry a tag the text lacks
_CLOSE = 5
_SHARED = 2  # neighbours that carry a tag the article does not otherwise support, to rank it
_EXPLAINED = 8
_SITE_CANDIDATES = 5  # the site tag model's best tags for an article join its candidates
_SITE_SURE = 0.5  # its score for a tag the text does not support to be shown when likely
# The ranker learns from this many candidates that are an article's tag and as many that are
# not, of this many in all (its trees hold a tenth out); with fewer, the untrained scoring ranks.
_MIN_RANKER_TAGS, _MIN_RANKER_CANDIDATES = 5, 20
_SEPARATORS = str.maketrans("", "", " -_.")  # what a spelling of a tag may differ by
FEATURE_NAMES = ["keybert_sim", "log_tf", "in_title", "first_pos", "idf",
                 "in_vocab", "log_tag_count", "prior", "neighbour_vote", "neighbour_share",
                 "in_text", "is_latin", "n_chars", "is_phrase", "mentioned", "close_share",
                 "commonness", "named", "said", "site_model"]


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
        self.spelling_ = site_spellings(text_candidates)
        self.seen_ = Counter()
        self.hits_ = Counter()
        self.says_ = Counter()  # of the articles with each tag, those whose text says it
        for doc, cands, g in zip(X, text_candidates, gold, strict=True):
            self.seen_.update(cands.keys())
            self.hits_.update(k for k in cands if k in g)
            self.says_.update(k for k in g if k in cands or mentions(doc.text, k))
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        self.index_ = faiss.IndexFlatIP(embeddings.shape[1])
        self.index_.add(embeddings)
        # The ranker learns from a bounded sample of articles: searching every article's
        # neighbours would make training quadratic in the corpus. Every choice by chance
        # below is by each article's key, not its position, so that adding an article or
        # reordering them does not move the others' tags (see `fit_tag_ranker`).
        keys = np.array([article_key(d.title, d.text) for d in X], dtype=np.int64)
        sample = np.sort(np.argsort(keys, kind="stable")[:self.max_ranker_articles])
        sims, ids = self._neighbours(embeddings[sample], exclude=sample)
        self.site_model_ = SiteTagModel().fit(embeddings, gold)
        site_scores = self.site_model_.out_of_fold(embeddings, gold, sample, keys)
        # "close" is relative to the site: as similar as the typical article's 5th neighbour
        self.close_similarity_ = (float(np.median(sims[:, min(_CLOSE, sims.shape[1]) - 1]))
                                  if sims.size else 0.0)
        pools = [self._pool(X[i], text_candidates[i], sims[n], ids[n], site_scores[n])
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
        self.base_rate_ = float(labels_arr.mean()) if len(labels_arr) else 0.0
        self.ranker_ = None
        if (np.bincount(labels_arr, minlength=2).min() >= _MIN_RANKER_TAGS
                and len(labels_arr) >= _MIN_RANKER_CANDIDATES):
            groups = np.repeat(keys[sample], [len(p.candidates) for p in pools])
            self.ranker_ = fit_tag_ranker(np.vstack(rows), labels_arr, groups, self.random_state)
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
    def _text_candidates(self, doc: Features) -> dict[str, Candidate]:
        found: dict[str, Candidate] = {}
        for pos, token in enumerate(doc.candidates):
            key = self.canonical(token)
            cand = found.get(key)
            if cand is None:
                cand = found[key] = Candidate(key, token, 0, pos, token in doc.phrases)
            cand.count += 1
        if self.phrases_:  # the site's multi-word tags ("Spring Boot") the text says
            for key in self.phrases_:
                if key not in found and (n := doc.text.count(key)):
                    found[key] = Candidate(key, self.display_[key], n, len(doc.candidates),
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

    def _pool(self, doc: Features, found: dict[str, Candidate], sims: np.ndarray,
              ids: np.ndarray, site_scores: np.ndarray) -> Pool:
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
        dropped: list[Candidate] = []

        def fits(c: Candidate) -> bool:
            c.reason = verdict(c, self.tag_count_.get(c.key, 0),
                               close.get(c.key, 0) >= _AGREEING_NEIGHBOURS, doc)
            if c.reason is not None and len(dropped) < _EXPLAINED and all(
                    d.key != c.key for d in dropped):
                dropped.append(c)
            return c.reason is None

        site = {self.site_model_.vocabulary_[j]: float(site_scores[j])
                for j in np.argsort(-site_scores)[:_SITE_CANDIDATES] if site_scores[j] > 0}
        candidates = self._shortlist(found.values(), fits)
        listed = {c.key for c in candidates}
        for key in dict.fromkeys([*votes, *site]):
            c = Candidate(key, self.display_.get(key, key), 0, -1)
            if key not in listed and fits(c) and (
                    c.supported or shares.get(key, 0) >= _SHARED or site.get(key, 0) >= _SITE_SURE):
                candidates.append(c)
        return Pool(doc, candidates, votes, {k: v / max(len(ids), 1) for k, v in shares.items()},
                     close, dropped, site_scores)

    def _shortlist(self, found: Iterable[Candidate], fits: Callable[[Candidate], bool]
                   ) -> list[Candidate]:
        """The `max_candidates` best by a plain tf-idf weight that fit: bounds the work on a
        long post, and only the ones looked at are checked."""
        def weight(c: Candidate) -> float:
            return math.log1p(c.count) * math.log((self.n_docs_ + 1) / (self.df_.get(c.key, 0) + 1))
        ranked = sorted(found, key=weight, reverse=True)
        return list(itertools.islice(filter(fits, ranked), self.max_candidates))

    def _tables(self, pools: list[Pool], gold: list[list[str]] | None = None) -> list[np.ndarray]:
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
                    commonness.zipf(c.key),
                    float(c.named),
                    math.log1p(c.said),
                    self._site_score(pool, c.key),
                ])
            tables.append(np.array(rows, dtype=float).reshape(-1, len(FEATURE_NAMES)))
        return tables

    def _site_score(self, pool: Pool, key: str) -> float:
        j = self.site_model_.index_.get(key)
        return 0.0 if j is None else float(pool.site_scores[j])

    def _embed_words(self, words: list[str]) -> np.ndarray:
        if self.embedder is None:
            raise RuntimeError("TagSuggester needs an embedder: load it through HybridModel")
        return self.embedder.embed(words)

    # ---- prediction ----------------------------------------------------------------------
    def suggest(self, X: Sequence[Features]) -> list[list[TagScore]]:
        return [tags for tags, _ in self.suggest_explained(X)]

    def suggest_explained(self, X: Sequence[Features]
                          ) -> list[tuple[list[TagScore], list[DroppedTag]]]:
        """Each article's tags, and the strongest candidates it did not get, with why."""
        if not X:
            return []
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        sims, ids = self._neighbours(embeddings)
        found = [self._text_candidates(d) for d in X]
        site_scores = self.site_model_.decision_function(embeddings)
        pools = [self._pool(d, found[i], sims[i], ids[i], site_scores[i])
                 for i, d in enumerate(X)]
        tables = self._tables(pools)
        chooser = self.chooser()
        stacked = np.vstack(tables)
        scores = self._score(stacked)
        out, start = [], 0
        for pool, table in zip(pools, tables, strict=True):
            end = start + len(table)
            out.append(chooser.select(pool, table, scores[start:end]))
            start = end
        return out

    def chooser(self) -> Chooser:
        return Chooser(self.display_, self.spelling_, self.tag_count_, self.says_, self.base_rate_,
                       self.ranker_ is not None, self.n_tags,
                       FEATURE_NAMES.index("neighbour_vote"), _EXPLAINED)

    def neighbours(self, X: Sequence[Features]) -> tuple[np.ndarray, np.ndarray]:
        embeddings = np.vstack([d.embedding for d in X]).astype(np.float32)
        return self._neighbours(embeddings)
