"""Describe each group of badly fitted articles as a category a person can judge: a name
(one of its distinctive terms: the one a reader would call the category by), the other
terms as keywords, its most frequent tags, a draft description, five typical titles, its
size and growth, and the existing category it is closest to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sklearn.preprocessing import normalize

from hybrid.ingest import commonness
from hybrid.ingest.keys import label_key, mentions, plain_tag
from hybrid.learn.model import HybridModel
from hybrid.learn.tag_rules import genre
from hybrid.taxonomy import Taxonomy
from hybrid.taxonomy.suggest.corpus import Corpus
from hybrid.taxonomy.suggest.proposal import NewCategory
from hybrid.taxonomy.suggest.terms import Term, distinctive_terms

KEYWORDS = 10
EXAMPLES = 5
TAGS = 5
WITHIN_SHARE = 0.5  # of a group's articles that carry one existing category: "within" it
_CJK = range(0x4E00, 0xA000)
# a name sets its group apart: its articles use it at least this many times as often as the
# articles read overall (分析, 影响 and 结果表明 are used by every kind of paper: lift 1-3.5;
# 历史, 算法 and 马拉松 by their group: 9-16)
MIN_LIFT = 3.0
# Zipf frequency from which a word says where or that, not what about (中国 6.4, 发展 6.0;
# 历史 5.9 and 文化 5.7 stay)
COMMONEST = 6.0


def describe(corpus: Corpus, groups: Sequence[np.ndarray], model: HybridModel,
             prototypes: dict[str, np.ndarray], tags: Sequence[Sequence[str]],
             taken: set[str] | None = None, names: Sequence[str | None] = ()
             ) -> list[NewCategory]:
    """One `NewCategory` per group, in the groups' order, named apart from each other and
    from every existing name and alias, and from `taken` (label keys of names proposed
    already). `tags`: each article's (`corpus.article_tags`). `names`: a group's name where
    its terms draft none (a parent's, the word its children's names share), unchecked."""
    terms = distinctive_terms([f.candidates for f in corpus.features],
                              [*groups, *filed_elsewhere(corpus, groups, model.taxonomy)],
                              KEYWORDS)
    taken = set(taken or ())
    is_taken = name_taken(model.taxonomy, taken)
    style = list_style(model.taxonomy)
    out = []
    for k, (group, scored) in enumerate(zip(groups, terms[:len(groups)], strict=True)):
        name = (draft_name(scored, [corpus.titles[i] for i in group], style, is_taken)
                or (names[k] if k < len(names) else None))
        if name is None:  # nothing distinctive to call it: no proposal a person could use
            continue
        taken.add(label_key(name))
        keywords = [name, *(t.text for t in scored if t.text != name)]
        often = frequent_tags(group, tags)
        examples = typical_titles(corpus, group)
        nearest, similarity = nearest_category(corpus, group, prototypes)
        within, share = carried(corpus, group)
        out.append(NewCategory(
            name=name, description=draft_description(keywords, examples), keywords=keywords[1:],
            terms=[t.text for t in scored], tags=often, examples=examples,
            articles=[corpus.ids[i] for i in group], growth=growth(corpus, group),
            nearest=nearest, nearest_similarity=similarity, within=within,
            within_share=share))
    return out


def filed_elsewhere(corpus: Corpus, groups: Sequence[np.ndarray], taxonomy: Taxonomy
                    ) -> list[list[int]]:
    """The existing categories' other articles, as further classes of the TF-IDF: a group's
    terms must set it apart from what the site already files, not only from the other
    groups."""
    grouped = {int(i) for g in groups for i in g}
    filed: dict[str, list[int]] = {name: [] for name in taxonomy.names}
    for i in range(len(corpus)):
        if i not in grouped:
            for name in corpus.categories(i):
                filed[name].append(i)
    return [rows for rows in filed.values() if rows]


def name_taken(taxonomy: Taxonomy, names: set[str]) -> Callable[[str], bool]:
    """Whether a name is an existing category's (or an alias) or one of `names` (label keys,
    the proposals named so far)."""
    return lambda name: taxonomy.resolve(name) is not None or label_key(name) in names


@dataclass(frozen=True)
class ListStyle:
    """How a list names its categories: mostly in Chinese or not, and the last characters
    that several of its Chinese names share (学 of 历史学 and 力学)."""

    chinese: bool
    endings: frozenset[str]


def list_style(taxonomy: Taxonomy) -> ListStyle:
    chinese = [name for name in taxonomy.names if _has_chinese(name)]
    ends = Counter(name[-1] for name in chinese if ord(name[-1]) in _CJK)
    return ListStyle(2 * len(chinese) > len(taxonomy.names),
                     frozenset(end for end, n in ends.items() if n >= 2))


def _has_chinese(text: str) -> bool:
    return any(ord(c) in _CJK for c in text)


def _may_name(term: Term) -> bool:
    key = label_key(term.text)
    return term.lift >= MIN_LIFT and commonness.zipf(key) < COMMONEST and not genre(key)


def draft_name(terms: Sequence[Term], titles: Sequence[str], style: ListStyle,
               taken: Callable[[str], bool]) -> str | None:
    """The one term a reader would call the group by. Readers name a category by the subject
    its articles share, which their titles say (马拉松, 历史), not by one article's detail
    (地径, 目标跟踪) nor by a word every kind of article uses (结论, 发展). So: of the
    distinctive terms that set the group apart and are no genre or commonest word, the one
    the most titles say; among equals the one in the list's own style (its script, an
    ending several of its names share), then the more distinctive. Without such a term, the
    most distinctive; None when every term is taken."""
    free = [t for t in terms if plain_tag(t.text) and not taken(t.text)]
    if not free:
        return None
    heads = [label_key(title) for title in titles]

    def fit(ranked: tuple[int, Term]) -> tuple[int, int, int]:
        rank, term = ranked
        key = label_key(term.text)
        styled = ((_has_chinese(term.text) == style.chinese)
                  + (_has_chinese(term.text) and term.text[-1] in style.endings))
        return sum(mentions(head, key) for head in heads), styled, -rank

    eligible = [(rank, t) for rank, t in enumerate(free) if _may_name(t)]
    return max(eligible, key=fit)[1].text if eligible else free[0].text


def frequent_tags(group: np.ndarray, tags: Sequence[Sequence[str]]) -> list[dict]:
    """The tags most of the group's articles carry (`tags`: each article's)."""
    counts: Counter = Counter()
    spelling: dict[str, Counter] = {}
    for i in group:
        for tag in dict.fromkeys(label_key(t) for t in tags[i] if plain_tag(t)):
            counts[tag] += 1
        for t in tags[i]:
            spelling.setdefault(label_key(t), Counter())[t.strip()] += 1
    return [{"tag": spelling[key].most_common(1)[0][0], "articles": n}
            for key, n in counts.most_common(TAGS) if n >= 2]


def _centre(corpus: Corpus, group: np.ndarray) -> np.ndarray:
    return normalize(corpus.embeddings[group].mean(axis=0, keepdims=True))[0]


def typical_titles(corpus: Corpus, group: np.ndarray) -> list[str]:
    """The titles of the articles nearest the group's centre."""
    order = np.argsort(-(corpus.embeddings[group] @ _centre(corpus, group)), kind="stable")
    titles = [corpus.titles[group[k]].strip() for k in order]
    return [t for t in dict.fromkeys(titles) if t][:EXAMPLES]


def nearest_category(corpus: Corpus, group: np.ndarray, prototypes: dict[str, np.ndarray]
                     ) -> tuple[str | None, float]:
    if not prototypes:
        return None, 0.0
    names = list(prototypes)
    sims = np.vstack([prototypes[n] for n in names]) @ _centre(corpus, group)
    return names[int(sims.argmax())], float(sims.max())


def carried(corpus: Corpus, group: np.ndarray) -> tuple[str | None, float]:
    """The existing category most of the group's articles already carry (people's labels):
    then the proposal is a part of it the list does not name."""
    counts = Counter(name for i in group for name in corpus.labels[i])
    if not counts:
        return None, 0.0
    name, n = counts.most_common(1)[0]
    share = n / len(group)
    return (name, share) if share >= WITHIN_SHARE else (None, 0.0)


def growth(corpus: Corpus, group: np.ndarray) -> dict:
    """Articles per year, the first and last date, and how many in the last year of the
    site (counted back from its newest article)."""
    dates = sorted(d for i in group if (d := corpus.dates[i]) is not None)
    if not dates:
        return {}
    newest = max(d for d in corpus.dates if d is not None)
    by_year = Counter(str(d.year) for d in dates)
    return {"by_year": dict(sorted(by_year.items())), "first": dates[0].isoformat(),
            "last": dates[-1].isoformat(), "undated": len(group) - len(dates),
            "last_12_months": sum(d > newest - timedelta(days=365) for d in dates)}


def _chinese(texts: Sequence[str]) -> bool:
    chars = "".join(texts)
    return sum(ord(c) in _CJK for c in chars) > 0.3 * max(len(chars), 1)


def draft_description(keywords: Sequence[str], examples: Sequence[str]) -> str:
    """One sentence in the site's language, for a person to rewrite."""
    if _chinese(examples):
        text = f"关于{'、'.join(keywords[:4])}等主题的文章"
        quoted = "".join(f"《{t}》" for t in examples[:2])
        return f"{text}，例如{quoted}。" if quoted else f"{text}。"
    text = f"Articles about {', '.join(keywords[:4])}"
    quoted = " and ".join(f"“{t}”" for t in examples[:2])
    return f"{text}, such as {quoted}." if quoted else f"{text}."
