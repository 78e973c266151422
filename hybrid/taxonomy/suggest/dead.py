"""Categories nobody uses any more: fewer than `min_articles` articles filed under them
(people's labels, else the model's), or none in the last `months` months. "Last" counts
back from the newest dated article, not from today: a snapshot of an old site has no dead
categories merely for being old."""

from __future__ import annotations

from datetime import date, timedelta

from hybrid.taxonomy import Taxonomy
from hybrid.taxonomy.suggest.corpus import Corpus
from hybrid.taxonomy.suggest.proposal import Removal

DAYS_PER_MONTH = 30.44


def dead_categories(corpus: Corpus, taxonomy: Taxonomy, min_articles: int, months: int
                    ) -> list[Removal]:
    filed: dict[str, list[int]] = {name: [] for name in taxonomy.names}
    for i in range(len(corpus)):
        for name in corpus.categories(i):
            filed[name].append(i)
    newest = max((d for d in corpus.dates if d is not None), default=None)
    out = []
    for name, rows in filed.items():
        days = [d for i in rows if (d := corpus.dates[i]) is not None]
        last = max(days) if days else None
        reason = _why(len(rows), last, newest, min_articles, months)
        if reason:
            out.append(Removal(name, reason, last.isoformat() if last else None,
                               [corpus.ids[i] for i in rows]))
    return out


def _why(count: int, last: date | None, newest: date | None, min_articles: int,
         months: int) -> str | None:
    if count < min_articles:
        return f"{count} article{'s' if count != 1 else ''} (fewer than {min_articles})"
    if (newest is not None and last is not None
            and last < newest - timedelta(days=months * DAYS_PER_MONTH)):
        return (f"no article in the last {months} months (its newest {last.isoformat()}, the "
                f"site's {newest.isoformat()})")
    return None
