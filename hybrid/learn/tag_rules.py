"""What a reader takes for a tag, candidate by candidate: a term the article is about. Said
in its title, description or headings, or said again and again in the body; or a site tag
that close neighbours agree on. Never a piece of a longer word, a string shaped like code or
a quantity (`shapes`), a word of everyday language (`commonness`: 平台, `network`), or a word
for what kind of text it is (研究进展), unless the article or the site names it as a subject.

Each rule was read off blind reader judgments of the three development sets (jiegec,
oec2003, csl): the kinds of tags readers struck out (FRAGMENT, GENERIC, UNSUPPORTED, ODD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hybrid import data
from hybrid.ingest import commonness
from hybrid.ingest.keys import label_key, mentions, times_said
from hybrid.ingest.shapes import known_name, odd
from hybrid.ingest.usage import role
from hybrid.learn.features import Features

_YEAR = re.compile(r"^(19|20)\d\d$")
_SITE_TAG = 2  # uses that make a word one of the site's own tags
# Zipf frequencies from which a word is everyday language, not a subject: readers reject
# 平台, 问题, 效率 (4.6-6.2) and `network`, `service` (5.0-5.5), and accept 数据库 (4.4),
# 知识图谱, `docker` (3.0) and `linux` (4.0)
_COMMON_CHINESE = 4.5
_COMMON_LATIN = 4.5
_FAMILIAR_LATIN = 3.5
_COMMON_SITE_CHINESE = 4.7
_FAMILIAR_CHINESE = 4.0
# a word most readers know (趣味 3.9, 外形 3.9, 计算器 3.5; not 知识图谱 or 褥疮): a tag where
# the title or a heading says it, or the site tags with it (跑步 on a runner's blog). Over
# every list judged in rounds 3-5, readers rejected 101 such tags and accepted 35.
_KNOWN_CHINESE = 3.5
# words that name the genre of a paper or post (研究进展, 试验研究, 主题探析, 研究现状): no
# subject, even where a site's authors tag with them (readers reject 综述 and 研究进展 on the
# authors' own lists too)
_GENRE_WORDS = "研究|进展|现状|探析|探讨|探究|浅析|浅谈|初探|综述|概述|述评|评述|简析|刍议"
_GENRE = re.compile(rf"^(?:{_GENRE_WORDS})|(?:{_GENRE_WORDS})$")
_UNNAMED_SHAPES = ("file name", "slug")  # shapes no heading makes a tag
# a name as common as the commonest words (中国 6.4, 美国 6.1; not 北京 5.8 or 华为 4.2) is
# where a text is set, not what it is about, even where the title says it or the site tags
# with it: readers struck out every such tag of every list in rounds 3-7 (51, none kept)
_SETTING_NAME = 6.0
# a two-character Chinese word the text says at most this often (title included), and no
# site tag: mostly a piece or a passing word (鳇仿, 右足, 近况, 福利); over rounds 3-7 readers
# struck out 116 such tags of our lists and accepted 48. Said in passing, then (`weak`).
_SHORT_WORD = re.compile(r"^[\u4e00-\u9fff]{2}$")
_SHORT_SAID = 2
_COMPOUND_SAID = 2  # how often the text must say everyday words the title joins (艺术教育)


@dataclass
class Candidate:
    key: str
    surface: str
    count: int = 0
    first: int = 0  # position of first occurrence; -1 for a neighbour's tag not in the text
    phrase: bool = False  # joined from words the text repeats together
    supported: bool = True  # by the text or agreeing close neighbours; else it must be likely
    mentioned: bool = False  # the text says it (a neighbour's tag too)
    said: int = 0  # how often the text says it (a neighbour's tag too)
    reason: str | None = None  # why it is no tag here (explained), None if it may be one
    named: bool = False  # the title, description or a heading says it
    weak: bool = False  # said in passing: a tag only where the ranker finds it likely
    central: bool = False  # named, said again and again, and no word most readers know


def _everyday(c: Candidate, site: int, named: bool, agree: bool, doc: Features) -> bool:
    """A word of everyday language, no subject to click: an English one unless the site
    tags with it and the article names it (`performance`, `network`, `apple` on their
    sites); a Chinese one unless a name (北京, 哈尔滨; never 中国) or a site tag in the
    title that is not too common (读书, 博客; never 工具, 分享, 思考); a familiar one (趣味,
    外形) only where the title or a heading says it, or the site tags with it."""
    common = commonness.zipf(c.key)
    if c.key.isascii() and not c.surface.islower() and known_name(c.key):
        return False  # Helm, Spring, Go: names, however common the English word
    if c.key.isascii():
        if common >= _COMMON_LATIN:
            return site < _SITE_TAG or not (named or agree)
        # `username`, `dev`, `embed`: words a reader would not click unless the article
        # is about them, or the site tags with them
        return common >= _FAMILIAR_LATIN and site < _SITE_TAG and not named
    if common >= _SETTING_NAME:  # 中国, 美国, 问题: never the subject, even in the title
        return True
    if c.surface in doc.names:
        return False
    if common < _KNOWN_CHINESE or (common < _FAMILIAR_CHINESE and site >= _SITE_TAG):
        return False
    if common < _COMMON_CHINESE:  # a familiar word (组件, 脚本): where the title says it
        return not named
    return not (site >= _SITE_TAG and common < _COMMON_SITE_CHINESE
                and title_named(c.key, doc))


def verdict(c: Candidate, site: int, agree: bool, doc: Features) -> str | None:
    """Why `c` may be no tag here, or None; sets `c.supported` (whether the article
    supports it), `c.said`, and for a possible tag `c.named`, `c.weak` and `c.central`. A
    reader takes for a tag a term the article is about: said in its title, description or
    headings, or said again and again; or a site tag close neighbours agree on. Never a
    piece of a longer word, a string shaped like code or a quantity, or a word of everyday
    language (平台, `network`), unless the article or the site names it as a subject. A year
    or a generic word (`code`, `null`) only where the site uses it on similar articles."""
    text = doc.text
    # a word the segmenter cut from the text, under its own key and ending in letters or
    # digits (not `C#` of "C#3.0"), is said: no regex needed
    said = c.mentioned = ((c.first >= 0 and not c.phrase and c.key == label_key(c.surface)
                           and c.surface[:1].isalnum() and c.surface[-1:].isalnum())
                          or mentions(text, c.key))
    c.supported = c.first >= 0 or agree or said
    if not said and c.key.isascii() and c.key in text:  # `git` where the text says "github"
        return "a piece of a longer word"
    if _YEAR.match(c.key):
        return None if agree and c.first >= 0 else "a year"
    if c.key in generic_words():
        return None if agree else "too general"
    named = mentions(doc.heads, c.key)  # the title, description or a heading says it
    shape = odd(c.surface)
    # a file name in a heading (### ViewController.swift) or a title written as a slug is
    # still no subject to click; an identifier a heading names may be (`UpdatePanel`)
    if shape and (not named or shape in _UNNAMED_SHAPES) and site < _SITE_TAG:
        return f"looks like {'an' if shape[0] in 'aeiou' else 'a'} {shape}"
    if _everyday(c, site, named, agree, doc):
        return "an everyday word"
    # 社会环境 said in passing is a phrase; 艺术教育 in the title and again in the text is the
    # paper's subject (rounds 3-7, every list: 12 such tags struck out, 69 kept)
    if (c.surface in doc.everyday and site < _SITE_TAG
            and not (title_named(c.key, doc) and times_said(text, c.key) >= _COMPOUND_SAID)):
        return "everyday words, no term"
    if genre(c.key):
        return "says what kind of text it is, not what about"
    if (site < _SITE_TAG and not known_name(c.key) and (use := role(text, c.key))
            and not title_named(c.key, doc)):
        return f"used as {use}"
    c.said = c.count if c.first >= 0 else (said and times_said(text, c.key))
    # 合成, 制备 say what was done, even where the title says it or the site tags it; an
    # article on 加班 names it and says it again and again
    if c.key in doc.actions and not (named and c.said >= 2 * salient(len(doc.lexical))):
        return "names an action, not a subject"
    c.named = named
    often = salient(len(doc.lexical))
    # said in passing: a few times in the body only (readers accepted a third of such words),
    # or a two-character Chinese word said once or twice, even in the title, and no site tag
    # (鳇仿, 右足, 近况: rounds 3-7, 116 struck out, 48 kept). With a ranker it is shown where
    # the ranker finds it likely; without one, only to fill a short list (`tag_select`).
    short = (site < _SITE_TAG and _SHORT_WORD.match(c.key) is not None
             and 0 < times_said(text, c.key) <= _SHORT_SAID)
    c.weak = (not named and 0 < c.said < often) or short
    # what the title, description or a heading names and the text says again and again
    # (单体架构, `Serilog`) is what the article is about, however rarely the site's authors
    # tag it; never a word most readers know
    familiar = _FAMILIAR_LATIN if c.key.isascii() else _KNOWN_CHINESE
    c.central = (named and c.said >= often and not short
                 and commonness.zipf(c.key) < familiar)
    return None


def title_named(key: str, doc: Features) -> bool:
    """Whether the title says `key`: what the article is about, where a description (an
    abstract) may say anything."""
    return mentions(label_key(doc.title), key)


def salient(chars: int) -> int:
    """How often a text of `chars` characters says a term it is about, outside its title
    and headings: twice in a short note, four times in a long post."""
    return 2 if chars < 1500 else 3 if chars < 4000 else 4


def genre(key: str) -> bool:
    """Whether `key` says what kind of text it is (研究进展, 综述), not what it is about."""
    return _GENRE.search(key) is not None


@lru_cache(maxsize=1)
def generic_words() -> frozenset[str]:
    lines = data.path("generic_tags.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))
