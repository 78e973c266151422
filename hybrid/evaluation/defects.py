"""What a reader sees wrong in a list of tags, counted (F1 against the authors hardly counts
it): a piece of a longer word of the text (`Cod` of "Code Agent", `elastic` of
"Elasticsearch"), two tags that are one (`Events` and `event`, `Kubernetes` and `Kube`), and
a tag that is neither in the text nor in the site's vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hybrid.ingest.keys import label_key, mentions, near_duplicates, only_inside_words


def flaws(tags: Sequence[str], text: str, vocabulary: Mapping[str, int]) -> dict[str, int]:
    """One article's defects. `text`: its clean text; `vocabulary`: the site's tags (keys)
    and their uses."""
    text = label_key(text)
    keys = [label_key(t) for t in tags]
    return {"fragments": sum(only_inside_words(text, k) for k in keys),
            "near_duplicate_pairs": sum(near_duplicates(a, b, vocabulary)
                                        for i, a in enumerate(keys) for b in keys[i + 1:]),
            "unsupported": sum(not mentions(text, k) and k not in vocabulary for k in keys),
            "tags": len(keys)}


def count(per_article: Sequence[dict[str, int]]) -> dict[str, float]:
    """The totals over articles, and the share of articles with a broken tag (a fragment or a
    near-duplicate)."""
    totals = {k: sum(f[k] for f in per_article)
              for k in ("fragments", "near_duplicate_pairs", "unsupported", "tags")}
    broken = sum(1 for f in per_article if f["fragments"] or f["near_duplicate_pairs"])
    return {**totals, "articles_with_broken_tags": broken,
            "share_with_broken_tags": round(broken / max(len(per_article), 1), 4)}
