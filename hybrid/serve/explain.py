"""Why each tag was given, from what `predict --explain` shows: the ranker's score, whether
the article's text says it, and which of the most similar labelled articles carry it."""

from __future__ import annotations

from typing import Any

from hybrid.ingest.keys import label_key
from hybrid.learn.prediction import Prediction


def tag_reasons(prediction: Prediction, text: str) -> list[dict[str, Any]]:
    """One entry per tag, in the prediction's order; `text` is the article's (title,
    description and content): a tag of the neighbours that the text also says is in it."""
    scored = {s["tag"]: s for s in prediction.keyword_scores}
    said = label_key(text)
    out = []
    for tag in prediction.tags:
        score = scored.get(tag)
        key = label_key(tag)
        similar = [n["id"] for n in prediction.neighbours if key in n["tags"]]
        in_text = bool(score and score["from_text"]) or key in said
        out.append({"tag": tag, "score": round(score["score"], 4) if score else None,
                    "in_text": in_text, "similar_articles": similar,
                    "neighbours": len(prediction.neighbours),
                    "source": "model" if score else prediction.source,
                    "reason": _reason(in_text, len(similar), len(prediction.neighbours),
                                      score is not None)})
    return out


def _reason(in_text: bool, carriers: int, neighbours: int, ranked: bool) -> str:
    if not ranked:
        return "suggested by the LLM, and found in the text or the site's tags"
    parts = ["the text says it"] if in_text else []
    if carriers:
        parts.append(f"{carriers} of the {neighbours} most similar labelled articles carry it")
    return "; ".join(parts) or "the tag ranker found it likely"
