"""One suggestion, start to finish: what the model says about every article, the articles
it fits badly, their groups described as new categories (named by an LLM if one is
given), the pairs it confuses, and the categories nobody uses."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from hybrid.config import Config
from hybrid.ingest.keys import label_key
from hybrid.learn.model import HybridModel
from hybrid.taxonomy.suggest.articles import Articles
from hybrid.taxonomy.suggest.clusters import carried_by, cluster
from hybrid.taxonomy.suggest.corpus import Corpus, article_tags, prototypes, read_corpus
from hybrid.taxonomy.suggest.dead import dead_categories
from hybrid.taxonomy.suggest.describe import (
    EXAMPLES,
    KEYWORDS,
    describe,
    draft_description,
    filed_elsewhere,
    name_taken,
    typical_titles,
)
from hybrid.taxonomy.suggest.fit import badly_fitted, lacking
from hybrid.taxonomy.suggest.join import join_groups
from hybrid.taxonomy.suggest.merges import find_merges
from hybrid.taxonomy.suggest.naming import Namer
from hybrid.taxonomy.suggest.parents import parent_groups, shared_name
from hybrid.taxonomy.suggest.proposal import NewCategory, Proposal

# a proposed category holds at least this share of the articles. A group is a subject when
# 60% of it is that subject, so its least size sets the smallest subject that can come back
# whole: at 1% of 2,000 articles (20) a subject of 15 needs 12 of them in one group; at 0.5%
# (10), half of it in a group of up to 13 is enough.
MIN_SHARE = 0.005
MAX_POOL = 5000  # the least confident badly fitted articles clustered, at most


def min_size(articles: int, config: Config) -> int:
    return max(config.suggest_min_articles, math.ceil(MIN_SHARE * articles))


def described_parents(corpus: Corpus, model: HybridModel, centres: dict[str, np.ndarray],
                      tags: list[list[str]], size: int, named: set[str]) -> list[NewCategory]:
    """The proposed parents (`parents.parent_groups`), described as any group, apart from
    the names of `named` (label keys), and named by what their children's names share
    when they share a word."""
    parents = parent_groups(corpus.labels, [corpus.categories(i) for i in range(len(corpus))],
                            centres, size)
    cut = model.segmenter.jieba.cut
    names = [shared_name(kids, cut) for kids, _ in parents]
    shared = {tuple(corpus.ids[i] for i in rows): (kids, name, rows)
              for (kids, rows), name in zip(parents, names, strict=True)}
    named = set(named)
    avoid = named | {label_key(name) for name in names if name}
    out = []
    for new in describe(corpus, [rows for _, rows in parents], model, centres, tags, avoid,
                        names):
        kids, name, rows = shared[tuple(new.articles)]
        if name and not name_taken(model.taxonomy, named)(name):
            new = replace(new, name=name)
        elif new.name == name:  # its terms drafted no name, and its shared word is taken
            continue
        named.add(label_key(new.name))
        # what a parent holds says more than its terms, which half a site's articles share
        # (研究, 结果表明, 分析): its keywords are its children, largest first
        keywords = list(kids[:KEYWORDS])
        examples = children_titles(corpus, kids, rows)
        out.append(replace(new, keywords=keywords, parent_of=kids, within=None, within_share=0.0,
                           examples=examples, description=draft_description(keywords, examples)))
    return out


def children_titles(corpus: Corpus, kids: list[str], rows: np.ndarray) -> list[str]:
    """A parent's example titles: the most typical of each child's, largest child first.
    The titles nearest the parent's centre came from one or two of its children (ships and
    gun mechanics for a proposed 工学 of ten), which hid what the parent would hold."""
    titles = [next(iter(typical_titles(corpus, np.array(own))), "")
              for kid in kids if (own := [i for i in rows if kid in corpus.categories(i)])]
    return [t for t in dict.fromkeys(titles) if t][:EXAMPLES]


def suggest(model: HybridModel, read: Articles, config: Config, namer: Namer | None = None,
            progress: Callable[[str], None] = lambda _: None) -> Proposal:
    """The proposal for `model`'s list given `read`'s articles. Nothing is changed."""
    started = time.perf_counter()
    progress(f"reading {len(read.articles)} articles with the model")
    corpus = read_corpus(model, read.articles)
    taxonomy = model.taxonomy
    names = taxonomy.names
    centres = prototypes(model)
    pool = badly_fitted(corpus, names, config.suggest_confidence)
    if len(pool) > MAX_POOL:
        pool = np.sort(pool[np.argsort(corpus.confidence[pool], kind="stable")[:MAX_POOL]])
    size = min_size(len(corpus), config)
    progress(f"grouping {len(pool)} badly fitted articles")
    groups = cluster(corpus, pool, names,
                     np.vstack(list(centres.values())) if centres else np.zeros((0, 1)),
                     carried_by(corpus.labels, list(centres)), size,
                     np.setdiff1d(lacking(corpus), pool))
    groups = join_groups(corpus.tags, groups, filed_elsewhere(corpus, groups, taxonomy))
    tags = article_tags(corpus, np.concatenate(groups) if groups else [], model)
    progress(f"describing {len(groups)} groups")
    additions = describe(corpus, groups, model, centres, tags)
    additions += described_parents(corpus, model, centres, tags, size,
                                   {label_key(a.name) for a in additions})
    if namer is not None:
        progress(f"asking {namer.client.model} to name them")
        named = {label_key(a.name) for a in additions}
        for new in additions:
            named.discard(label_key(new.name))
            namer.name(new, name_taken(taxonomy, named))
            named.add(label_key(new.name))
    progress("looking for confused and unused categories")
    overlaps = find_merges(model, config.dead_min_articles)
    merging = {n for m in overlaps.merges for n in (m.into, m.merged)}
    removals = [r for r in dead_categories(corpus, taxonomy, config.dead_min_articles,
                                           config.dead_months) if r.name not in merging]
    about = {
        "taxonomy": taxonomy.source, "taxonomy_fingerprint": taxonomy.fingerprint,
        "articles_from": read.where, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "articles": len(corpus), "unreadable": [*read.failed, *corpus.failed][:100],
        "unreadable_count": len(read.failed) + len(corpus.failed),
        "dated": sum(d is not None for d in corpus.dates),
        "badly_fitted": len(pool), "grouped": sum(len(g) for g in groups),
        "min_size": size, "most_confused": overlaps.pairs,
        **({"merges_note": overlaps.note} if overlaps.note else {}),
        "settings": {"suggest_confidence": config.suggest_confidence,
                     "dead_min_articles": config.dead_min_articles,
                     "dead_months": config.dead_months},
        **({"llm": {"model": namer.client.model, **namer.usage}} if namer else {}),
        "seconds": round(time.perf_counter() - started, 2)}
    return Proposal(taxonomy, additions, overlaps.merges, removals, about)
