"""Markdown/HTML article → plain text, with code kept apart so it cannot dominate."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import markdown_it
import markdown_it_pyrs
from selectolax.lexbor import LexborHTMLParser

from hybrid.ingest.article import Article
from hybrid.ingest.keys import nfkc

_DROP_TAGS = ["script", "style", "nav", "noscript", "iframe", "svg", "head", "template"]
_BLOCK_SEPARATOR = " "
_HEADINGS = "h1, h2, h3, h4, h5, h6"
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# The body is read from at most this many characters of an article's content, cut at a
# line: every stage after it (segmentation, features, tag checks) then costs at most so
# much, however long the post (real sites' p99 is 30-50k characters, the longest 195k).
# It is near the 99th percentile of real long posts; the embedding reads 400 characters
# and the tag candidates 3,000. At 12,000 the classifier lost words it uses on jiegec's 46
# longer posts (top-1 0.703 -> 0.696, label-set F1 0.708 -> 0.699); at 30,000 (11 posts
# cut) top-1 and macro-F1 stay within 0.001 (scripts/bench_quality.py, docs/speed.md).
READ_CHARS = 30_000
_ADDRESS = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'\u3000-\u303f\uff01-\uff5e]+", re.IGNORECASE)
_MATH = re.compile(r"\$\$.+?\$\$|\\\(.+?\\\)|\\\[.+?\\\]"
                   r"|\$[^\s$\u4e00-\u9fff](?:[^$\n\u4e00-\u9fff]*?[^\s$\\\u4e00-\u9fff])?\$(?!\d)"
                   r"|\\[A-Za-z]+", re.DOTALL)
# A Markdown link or image that was not rendered (CommonMark leaves Markdown inside an HTML
# block, such as `<div>![](/img/a.png)</div>`, as it is): its text, without the target,
# whose path would pass for words. Not an index call in code (`f[i](x)`).
_RAW_LINK = re.compile(r"(?<![A-Za-z0-9_\])])!?\[([^\]\n]*)\]\([^()\n]*\)")
# markdown-it-pyrs, the Rust port of markdown-it: the same CommonMark output ~12x faster.
# It panics on a few inputs (e.g. "[`]\n```"); markdown-it-py then renders the article.
_markdown = markdown_it_pyrs.MarkdownIt("commonmark").enable("table")
_markdown_reference = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")


def render_markdown(text: str) -> str:
    try:
        return _markdown.render(text)
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if type(exc).__name__ != "PanicException":
            raise
        return _markdown_reference.render(text)


def normalize(text: str) -> str:
    """`nfkc` folds full-width forms (ＡＰＩ，：) into their ordinary ones and drops trademark
    signs; then tidy whitespace."""
    text = nfkc(text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


class HtmlText(NamedTuple):
    prose: str
    code: str
    headings: str  # the headings' text, one per line (also in `prose`)


def without_addresses(text: str) -> str:
    """An address is no tag: its `https`, hosts and paths would pass for words. The
    classifier still reads them: a `blog.csdn.net` link says where a post was written
    (without them, jiegec's six `csdn` posts went from 0.91 to 0.50 F1)."""
    return _ADDRESS.sub(" ", text)


def without_math(text: str) -> str:
    """A formula is no tag: `$\\mathrm{PHR}$`, `$$…$$`, `\\(…\\)`, `\\[…\\]` and any
    `\\command` left outside them would give `mathrm` and `t_{AA}` for words. Inline `$…$`
    is a formula only as TeX writes one (no space inside either `$`, no digit after the
    closing one, no Chinese in it), so prices ("$5 or $10") and prose stay."""
    return _MATH.sub(" ", text)


def html_to_text(html: str) -> HtmlText:
    """Prose, code and headings of an HTML fragment."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(_DROP_TAGS)
    code_parts = []
    for node in tree.css("pre"):
        code_parts.append(node.text(deep=True))
        node.decompose()
    headings = "\n".join(node.text(deep=True, separator=" ") for node in tree.css(_HEADINGS))
    root = tree.body or tree.root
    prose = root.text(deep=True, separator=_BLOCK_SEPARATOR) if root else ""
    return HtmlText(normalize(without_raw_links(prose)), normalize("\n".join(code_parts)),
                    normalize(without_raw_links(headings)))


def without_raw_links(text: str) -> str:
    """`_RAW_LINK`s replaced by their text, innermost first: a linked image
    (`[![logo](/a.png)](/guide/x)`) leaves no target behind either."""
    count = 1
    while count:
        text, count = _RAW_LINK.subn(r"\1", text)
    return text


_WORD_END = re.compile(r"[A-Za-z0-9_]+$")


def prefix(text: str, n: int) -> str:
    """At most `n` characters of `text`, never ending in a piece of a Latin word: a cut
    "curve" would leave a "c" for the tagger to find."""
    head = text[:n]
    if len(text) > n and _WORD_END.search(text[n - 1:n + 1]):
        return _WORD_END.sub("", head)
    return head


@dataclass
class CleanText:
    title: str
    description: str
    body: str
    code: str
    flags: list[str] = field(default_factory=list)
    headings: str = ""  # the body's headings, one per line: what the article is about

    def embedding_input(self, budget: int) -> str:
        """Title and description first: they say most about the topic per character."""
        head = " ".join(p for p in (self.title, self.description) if p)
        room = max(budget - len(head) - 1, 0)
        return f"{head}\n{self.body[:room]}".strip()[:budget]

    def lexical_text(self, code_share: float = 0.2) -> str:
        """Whole prose plus a bounded slice of code, so code identifiers help but do not swamp."""
        prose = "\n".join(p for p in (self.title, self.description, self.body) if p)
        code = prefix(self.code, int(len(prose) * code_share))
        return f"{prose}\n{code}" if code else prose


def head_lines(text: str, n: int = READ_CHARS) -> str:
    """At most `n` characters of `text`, cut after a whole line where one ends in the second
    half (not inside a line of code, a table row or a word), else as `prefix` cuts."""
    if len(text) <= n:
        return text
    line_end = text.rfind("\n", n // 2, n)
    return text[:line_end] if line_end >= 0 else prefix(text, n)


def clean(article: Article) -> CleanText:
    """The article's text; its body from the first `READ_CHARS` characters of the content."""
    body = (html_to_text(render_markdown(head_lines(article.content))) if article.content
            else None)
    return CleanText(
        title=html_to_text(article.title).prose if article.title else "",
        description=html_to_text(article.description).prose if article.description else "",
        body=body.prose if body else "",
        code=body.code if body else "",
        flags=list(article.flags),
        headings=body.headings if body else "",
    )
