"""Each system's scores from one judged sheet: the issue's table (accepted share, articles
with every tag accepted, mean rating, missing obvious tags) and what lies behind it (reject
reasons, tags per article, lists left empty)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hybrid.evaluation.judging.sheet import REASONS, Key
from hybrid.evaluation.judging.verdicts import Verdicts
from hybrid.evaluation.tables import table

LONG_CHARS = 300  # an article this long should get at least 3 tags where its text has them


@dataclass
class SystemScore:
    system: str
    articles: int
    tags: int
    accepted: int
    clean_articles: int  # at least one tag, every one accepted (an empty list is not clean)
    empty_lists: int
    mean_rating: float
    missing_per_article: float
    tags_per_article: float
    long_articles: int  # with at least LONG_CHARS characters of prose
    tags_per_long_article: float | None
    long_with_under_three: int
    reasons: dict[str, int]

    @property
    def accepted_share(self) -> float | None:
        return self.accepted / self.tags if self.tags else None

    @property
    def clean_share(self) -> float:
        return self.clean_articles / self.articles

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accepted_share": self.accepted_share,
                "clean_share": self.clean_share}


def score(key: Key, verdicts: Verdicts, long_chars: int = LONG_CHARS) -> list[SystemScore]:
    """One score per system of the key, in the key's order, from verdicts `read_verdicts`
    checked against the same key."""
    scores = []
    for system in key.systems:
        judged = [(a, next(verdicts[a.id][x] for x, kept in a.lists.items()
                           if kept.system == system)) for a in key.articles]
        lists = [v for _, v in judged]
        counts = [len(v.tags) for v in lists]
        long_counts = [len(v.tags) for a, v in judged if a.text_chars >= long_chars]
        rejected = [t.reason for v in lists for t in v.tags if not t.accepted]
        scores.append(SystemScore(
            system=system, articles=len(lists), tags=sum(counts),
            accepted=sum(t.accepted for v in lists for t in v.tags),
            clean_articles=sum(bool(v.tags) and all(t.accepted for t in v.tags) for v in lists),
            empty_lists=counts.count(0),
            mean_rating=sum(v.rating for v in lists) / len(lists),
            missing_per_article=sum(len(v.missing) for v in lists) / len(lists),
            tags_per_article=sum(counts) / len(lists), long_articles=len(long_counts),
            tags_per_long_article=sum(long_counts) / len(long_counts) if long_counts else None,
            long_with_under_three=sum(c < 3 for c in long_counts),
            reasons={r: rejected.count(r) for r in REASONS}))
    return scores


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.0%})" if whole else f"{part} of 0"


def format_scores(scores: list[SystemScore], long_chars: int = LONG_CHARS) -> str:
    main = table([[s.system, _share(s.accepted, s.tags), _share(s.clean_articles, s.articles),
                   s.mean_rating, s.missing_per_article, s.tags_per_article,
                   s.tags_per_long_article, f"{s.long_with_under_three} of {s.long_articles}",
                   s.empty_lists] for s in scores],
                 ["system", "tags accepted", "every tag accepted", "mean rating",
                  "missing/article", "tags/article", f"tags/article (≥{long_chars} chars)",
                  f"under 3 tags (≥{long_chars} chars)", "empty lists"])
    reasons = table([[s.system, s.tags - s.accepted, *s.reasons.values()] for s in scores],
                    ["rejected", "all", *REASONS])
    return f"{main}\n\n{reasons}"
