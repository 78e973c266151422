"""The label-quality plots, and one static HTML page holding them and the tables.

The page is self-contained (PNG images inlined as base64), so it can be mailed or put on
any web server, for people who don't use Jupyter. The notebook draws the same figures with
the same functions.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

from hybrid.config import Config
from hybrid.evaluation.proposal_page import proposal_html
from hybrid.evaluation.quality import Progress, Quality, assess, predictions_for
from hybrid.ingest.article import Article
from hybrid.learn.model import HybridModel
from hybrid.output import write_text
from hybrid.taxonomy.suggest.proposal import read_proposal

CJK_FONT = "Noto Sans CJK SC"
TOP_TAGS = 25


def _font_path() -> Path | None:
    """The CJK font of the `noto-cjk-sans-otc` wheel (the `report` extra), if installed."""
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return None
    return Path(FONT_PATH)


def use_cjk_font() -> None:
    """Category names and tags are mostly Chinese; matplotlib's own fonts have no CJK glyphs."""
    import matplotlib

    if CJK_FONT not in {f.name for f in font_manager.fontManager.ttflist}:
        if (path := _font_path()) is None:
            return  # the plots still render; Chinese shows as boxes
        font_manager.fontManager.addfont(str(path))
    matplotlib.rcParams["font.sans-serif"] = [CJK_FONT, "DejaVu Sans"]
    matplotlib.rcParams["axes.unicode_minus"] = False


def cjk_font_face(text: str) -> str:
    """A CSS @font-face holding only the CJK glyphs `text` uses, cut from the bundled font:
    the page's tables show Chinese even where no CJK font is installed (headless Chromium on
    a server showed boxes), for a few hundred KB instead of the font's 19 MB. Empty without
    the font."""
    wide = "".join(sorted({c for c in text if ord(c) >= 0x2E80}))
    if not wide or (path := _font_path()) is None:
        return ""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    names = [f["name"].getDebugName(1) for f in TTCollection(str(path), lazy=True).fonts]
    options = subset.Options()
    options.font_number = names.index(CJK_FONT) if CJK_FONT in names else 0
    font = subset.load_font(str(path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=wide)
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"@font-face{{font-family:'{CJK_FONT} (page)';"
            f"src:url(data:font/otf;base64,{data}) format('opentype')}}")


def per_category(q: Quality) -> Figure:
    table = q.per_category
    fig = Figure(figsize=(9, 0.45 * len(table) + 1.5), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))
    for offset, metric in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1"), strict=True):
        ax.barh(y + offset, table[metric], height=0.27, label=metric)
    ax.set_yticks(y, [f"{name} ({n})" for name, n in zip(table.index, table["support"],
                                                         strict=True)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("out-of-fold score (support in brackets)")
    ax.legend(loc="lower right")
    ax.set_title("Per category: precision, recall, F1")
    return fig


def confusion(q: Quality) -> Figure:
    m = q.confusion
    fig = Figure(figsize=(1.0 * len(m) + 3, 0.8 * len(m) + 2), layout="constrained")
    ax = fig.subplots()
    if m.empty:
        ax.text(0.5, 0.5, "no confusion", ha="center", va="center")
        ax.set_axis_off()
        return fig
    counts = m.to_numpy()
    off = counts.copy()
    np.fill_diagonal(off, 0)
    image = ax.imshow(off, cmap="Reds")
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center",
                    color="tab:green" if i == j else "black")
    ax.set_xticks(range(len(m)), m.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(m)), m.index)
    ax.set_xlabel("model gave (and the author did not)")
    ax.set_ylabel("author label")
    ax.set_title("Most-confused categories (diagonal, green: author labels found)")
    fig.colorbar(image, ax=ax, shrink=0.7, label="articles")
    return fig


def confidence(q: Quality) -> Figure:
    c = q.confidence
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist([c.loc[c["correct"], "confidence"], c.loc[~c["correct"], "confidence"]], bins=bins,
            stacked=True, label=["top category right", "top category wrong"],
            color=["tab:green", "tab:red"])
    ax.set_xlabel("confidence (probability of the top category)")
    ax.set_ylabel("articles")
    ax.legend()
    ax.set_title("Confidence")
    return fig


def reliability(q: Quality) -> Figure:
    r = q.reliability.dropna(subset=["accuracy"])
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(r["confidence"], r["accuracy"], marker="o", label="model")
    for _, row in r.iterrows():
        ax.annotate(str(int(row["articles"])), (row["confidence"], row["accuracy"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean confidence in the bin")
    ax.set_ylabel("share with the top category right")
    ax.legend(loc="upper left")
    ax.set_title(f"Reliability (articles per bin beside each point), "
                 f"ECE {q.summary['ece']:.3f}")
    return fig


def risk_coverage(q: Quality) -> Figure:
    """Accuracy of the most confident x%, and what a perfect teacher answering the least
    confident (or a random) share would give: how well the confidence orders errors."""
    c, routed = q.risk_coverage, q.routing
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(c["coverage"], c["accuracy"], marker=".", label="top-1 accuracy of the most confident")
    if not routed.empty:
        ax.plot(1 - routed["share"], routed["lowest_confidence"], "o", color="tab:green",
                label="all, least confident share answered by a perfect teacher")
        ax.plot(1 - routed["share"], routed["random"], "x", color="tab:red",
                label="all, a random share answered by a perfect teacher")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of articles labelled automatically (most confident first)")
    ax.set_ylabel("top-1 accuracy")
    ax.legend(loc="lower left")
    ax.set_title("Risk against coverage, and routing the rest to an LLM")
    return fig


def coverage(q: Quality, low_confidence: float | None = None) -> Figure:
    c = q.coverage
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(c["threshold"], c["coverage"], marker=".", label="share auto-labelled")
    ax.plot(c["threshold"], c["accuracy_top1"], marker=".", label="their top-1 accuracy")
    ax.plot(c["threshold"], c["samples_f1"], marker=".", ls=":", label="their label-set F1")
    if low_confidence is not None:
        ax.axvline(low_confidence, color="grey", ls="--", label="low_confidence setting")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold: articles at or above it are labelled automatically")
    ax.legend(loc="lower left")
    ax.set_title("Coverage against threshold")
    return fig


def tags(q: Quality) -> Figure:
    t = q.tag_frequency
    fig = Figure(figsize=(11, 5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
    top = t.sort_values("author", ascending=False, kind="stable").head(TOP_TAGS)
    y = np.arange(len(top))
    left.barh(y - 0.2, top["author"], height=0.4, label="author")
    left.barh(y + 0.2, top["model"], height=0.4, label="model")
    left.set_yticks(y, top["tag"], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("articles")
    left.legend(loc="lower right")
    left.set_title(f"The {TOP_TAGS} most used author tags")
    for who in ("author", "model"):
        counts = np.sort(t[who].to_numpy())[::-1]
        counts = counts[counts > 0]
        right.loglog(np.arange(1, len(counts) + 1), counts, marker=".", ls="none",
                     label=f"{who} ({len(counts)} distinct)")
    right.set_xlabel("tag rank")
    right.set_ylabel("articles using the tag")
    right.legend()
    right.set_title("Long tail: uses by rank")
    return fig


ROUTING_COLUMNS = {"share": "share sent to the teacher", "articles": "articles sent",
                   "accuracy": "top-1 as predicted",
                   "lowest_confidence": "top-1, the least confident sent",
                   "random": "top-1, a random share sent"}
HEADINGS = {
    "per_category": "Per-category quality",
    "confusion": "Confusion between categories",
    "confidence": "Confidence",
    "reliability": "Calibration",
    "coverage": "Coverage against threshold",
    "risk_coverage": "Risk against coverage, and the routing ceiling",
    "tags": "Tags",
}


def figures(q: Quality, low_confidence: float | None = None) -> dict[str, Figure]:
    """Every plot, keyed as `HEADINGS`; `low_confidence` marks the review threshold."""
    use_cjk_font()
    return {"per_category": per_category(q), "confusion": confusion(q),
            "confidence": confidence(q), "reliability": reliability(q),
            "coverage": coverage(q, low_confidence), "risk_coverage": risk_coverage(q),
            "tags": tags(q)}


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_html(index=index, float_format=lambda x: f"{x:.3f}", na_rep="-",
                         border=0, classes="t")


def tables(q: Quality) -> dict[str, tuple[pd.DataFrame, bool]]:
    """The tables under each plot (the frame, and whether its index is a column)."""
    return {
        "per_category": (q.per_category, True),
        "confusion": (q.confused_pairs, False),
        "reliability": (q.reliability, False),
        "coverage": (q.coverage, False),
        "risk_coverage": (q.routing.rename(columns=ROUTING_COLUMNS), False),
        "tags": (q.tag_tail, True),
    }


_STYLE = """body{font-family:'Noto Sans CJK SC (page)',sans-serif;max-width:1100px;margin:2em auto;
color:#222}
table.t{border-collapse:collapse;margin:.5em 0 1.5em;font-size:90%}
table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
table.t td:first-child,table.t th:first-child{text-align:left}
img{max-width:100%}h2{border-bottom:2px solid #444;margin-top:2em}"""


def render_html(q: Quality, title: str, low_confidence: float | None = None,
                proposal: str | Path | None = None) -> str:
    """The page; with `proposal` (a `hybrid taxonomy suggest` file), its section too."""
    figs = figures(q, low_confidence)
    under = tables(q)
    summary = pd.DataFrame({"value": q.summary})
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>Predictions: {html.escape(q.how)}. Written "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>", _table(summary)]
    for name, heading in HEADINGS.items():
        data = base64.b64encode(png(figs[name])).decode("ascii")
        parts += [f"<h2>{html.escape(heading)}</h2>",
                  f"<img alt='{name}' src='data:image/png;base64,{data}'>"]
        if name in under:
            frame, index = under[name]
            parts.append(_table(frame, index))
    parts += ["<h2>Likely mislabelled articles</h2>",
              "<p>Ranked by cleanlab on the out-of-fold probabilities: the author labels are "
              "the ones to check.</p>", _table(q.suspects, index=False)]
    if proposal is not None:
        parts.append(proposal_html(proposal, _table))
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{cjk_font_face(title + body)}{_STYLE}</style></head><body>\n"
            f"{body}\n</body></html>")


def write_report(q: Quality, path: str | Path, title: str,
                 low_confidence: float | None = None, proposal: str | Path | None = None
                 ) -> Path:
    return write_text(path, render_html(q, title, low_confidence, proposal))


def label_quality_report(model: HybridModel, articles: list[Article], config: Config,
                         out: str | Path, title: str, folds: int = 5, suspects: int = 20,
                         progress: Progress = lambda _: None,
                         proposal: str | Path | None = None) -> Quality:
    """Assess `articles`' labels with `model` and write the HTML page to `out`, with the
    section of a category-list `proposal` file if one is given."""
    if proposal is not None:
        read_proposal(proposal)  # a file that is no proposal fails before the long part
    quality = assess(predictions_for(model, articles, config, folds, progress=progress),
                     suspects)
    write_report(quality, out, title, config.low_confidence, proposal)
    return quality
