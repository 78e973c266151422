"""Whole terms out of a segmented Chinese text. jieba cuts a name it does not know into
pieces (苯达莫司汀 → 苯达 + 莫司 + 汀, 银河麒麟 → 银河 + 麒麟), and a piece is no tag: a reader
calls `图谱` of 知识图谱 a fragment. A word the text repeats, always beside the same word, is
part of a longer term: grown to where its occurrences part ways, it is the term the text
uses, and the word alone is not a candidate where the text never says it apart."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

import rjieba

from hybrid.ingest import commonness

MAX_TERM_CHARS = 10
# what jieba tags the pieces of a name it does not know (苯达/nz 莫司/nr 汀/ns): such words
# may grow a term
_TERM_POS = {"n", "nr", "ns", "nt", "nz", "nw", "eng", "l", "j", "ng", "nrt", "x"}
# a word beginning so is a pronoun or a quantity with a noun (我妹, 几句话, 每个人)
_NOT_TERM_START = frozenset("我你他她它咱您几某每各该此这那")
_EVERYDAY_VERB = 5.0  # Zipf: 提高, 使用 (not 强化, 知识: 强化学习 and 知识图谱 are terms)
COMMON_WORD = 4.5  # Zipf: a word this common is an ordinary word of the language
_ACTION_WORD = 3.5  # Zipf: a verb this common names an action, no subject (制备 3.6, 合成 4.4)
_FAMILIAR_WORD = 4.0  # Zipf: a word this common makes, with another, no term of its own
_CLAUSE_POS = {"v", "vd", "vi", "d", "ad", "p", "c"}
_MODIFIER_POS = {"a", "b", "h"}  # an adjective, a distinguishing word, a prefix
# a character that makes a class name of a formula or a letter before it (Fe3Al基, Ti-Al系,
# A型): after a Latin word, it belongs to that word, not to the word after it
_CLASS_SUFFIX = frozenset("基系型")
_LOCANT = re.compile(r"[0-9A-Za-z′',)\]]-$")  # 5-, N-, 2′-, (2,3)-
_BRACKETED = re.compile(r"[(\[][^()\[\]\s]*[\d\-][^()\[\]\s]*[)\]]$")  # (9-吖啶基氨基), (1,1)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# jieba's dictionary tags some terms as no noun: distinguishing words (虚拟机/b, 多线程/b,
# 非线性/b) and idioms (乱序执行/i, 死循环/i); most of its idioms are sayings (退而求其次)
_DISTINGUISHING_POS = "b"
_IDIOM_POS = "i"
_MIN_UNLISTED_CHARS = 3  # two-character ones are mostly no terms (所有, 主要, 超时)
_IDIOM_SAID = 3  # how often a text says an idiom that is its term: a saying is said once
_LATIN_END = re.compile(r"[0-9A-Za-z\-]$")
# what `_LOCANT` or `_BRACKETED` ends with (`$` also matches before a last newline): most
# places end otherwise, and need no regex
_GLUE_ENDS = ("-", ")", "]", "-\n", ")\n", "]\n")


def whole_terms(tokens: Sequence[str], candidate: Callable[[int], bool],
                joins: Callable[[int], bool],
                modifies: Callable[[int], bool] = lambda i: False) -> dict[int, int]:
    """For each occurrence of a grown term, its last token index → its first: grown from a
    repeated Chinese `candidate` token, one neighbouring token at a time, while every
    occurrence has the same neighbour and that neighbour `joins` a term (a content word, not
    a verb like 治疗 that starts a clause), or before it `modifies` it (大|口径 of
    大口径火炮); at most `MAX_TERM_CHARS`."""
    places: dict[str, list[int]] = defaultdict(list)
    for i, token in enumerate(tokens):
        if candidate(i) and _CJK.search(token):
            places[token].append(i)
    found: list[tuple[int, int]] = []
    for token, at in places.items():
        if len(at) < 2:
            continue
        first, last, chars = 0, 0, len(token)  # offsets from each occurrence
        while True:
            right = {tokens[i + last + 1] if i + last + 1 < len(tokens) else None for i in at}
            if (len(right) == 1 and (word := right.pop()) and _CJK.search(word)
                    and chars + len(word) <= MAX_TERM_CHARS
                    and all(joins(i + last + 1) for i in at)):
                last += 1
                chars += len(word)
                continue
            left = {tokens[i + first - 1] if i + first > 0 else None for i in at}
            if (len(left) == 1 and (word := left.pop()) and _CJK.search(word)
                    and chars + len(word) <= MAX_TERM_CHARS
                    and all(joins(i + first - 1) or modifies(i + first - 1) for i in at)):
                first -= 1
                chars += len(word)
                continue
            break
        if first or last:
            found.extend((i + first, i + last) for i in at)
    # the longest first; a span that overlaps a longer one is dropped
    spans: dict[int, int] = {}
    taken: set[int] = set()
    for start, end in sorted(found, key=lambda se: se[0] - se[1]):
        if taken.isdisjoint(range(start, end + 1)):
            spans[end] = start
            taken.update(range(start, end + 1))
    return spans


def across(phrase: str, term: str, overlap: int = 1) -> bool:
    """A phrase that holds part of a term (at least `overlap` characters of it) and not all
    of it (血浆中苯达 of 苯达莫司汀)."""
    if term in phrase:
        return False
    return phrase in term or any(phrase.endswith(term[:n]) or phrase.startswith(term[-n:])
                                 for n in range(overlap, len(term)))


def lone_char(token: str) -> bool:
    """A single Chinese character: a measure word or a suffix cut off its word (三|种|微藻,
    安全|性|评价), no start for a term."""
    return len(token) == 1 and bool(_CJK.match(token))


def action_word(token: str, jieba: rjieba.Jieba) -> bool:
    """A familiar Chinese verb, one word of jieba's dictionary (合成, 制备, 测定, 优化, 调试;
    not the rarer 凋亡, 传热): it says what was done, and readers reject it as a tag (a fifth
    of such tags were accepted in blind judgments, on every list, the authors' too)."""
    if len(token) < 2 or not _CJK.match(token) or commonness.zipf(token) < _ACTION_WORD:
        return False
    tagged = jieba.tag(token)
    return len(tagged) == 1 and tagged[0][1] in {"v", "vn"}


def everyday_word(token: str) -> bool:
    """A Chinese word common in everyday language (研究, 进展, 社会, 环境)."""
    return commonness.zipf(token) >= _FAMILIAR_WORD


def other_term(token: str, pos: str, said: Mapping[str, int], listed: set[str],
               jieba: rjieba.Jieba) -> bool:
    """A term jieba tags as neither noun nor name, and no word most readers know (those it
    tags so are used so: 构造, 模拟, 编译, 大规模). One a term dictionary or the site's tags
    list (`listed`, casefolded: 死锁/v, 掺杂/v, 异步/d; jieba keeps its own tag of a word it
    has); else a distinguishing word of three or more characters (虚拟机, 多线程, 非线性; not
    所有, 超时), or such an idiom that the text says at least `_IDIOM_SAID` times (`said`:
    each word's count; 乱序执行, not 退而求其次, said once), made of more than everyday words
    (not 同一个, 错误信息, 转换成)."""
    if commonness.zipf(token) >= _ACTION_WORD:
        return False
    if token.casefold() in listed:
        return True
    if len(token) < _MIN_UNLISTED_CHARS or not (_CJK.match(token[0]) and _CJK.match(token[-1])):
        return False
    if not (pos == _DISTINGUISHING_POS or (
            pos == _IDIOM_POS and said[token] >= _IDIOM_SAID)):
        return False
    return not _everyday_words(token, jieba)


def _everyday_words(token: str, jieba: rjieba.Jieba) -> bool:
    """Whether `token` is made of everyday words only: the shorter words jieba's dictionary
    finds in it that are `everyday_word`s cover it (同一|一个, 错误|信息, 转换|换成; not
    乱序|执行 or 虚拟|机)."""
    covered: set[int] = set()
    for piece in jieba.cut_for_search(token):
        if 1 < len(piece) < len(token) and everyday_word(piece):
            for at in _places(token, piece):
                covered.update(range(at, at + len(piece)))
    return len(covered) == len(token)


def clause_verb(token: str, pos: str) -> bool:
    """A verb of everyday language (治疗, 提高, 使用): it makes a clause of the words around
    it. jieba calls some nouns verbs (知识): the bundled dictionary keeps such terms whole
    (知识图谱)."""
    return pos in _CLAUSE_POS and commonness.zipf(token) >= COMMON_WORD


def pieces_of(longer: set[str], grown: set[str], candidates: set[str], text: str) -> set[str]:
    """The candidates the text never says but inside one longer term: `图谱` of 知识图谱,
    `functional` of "functional programming"; and pieces across the edge of a term grown
    from pieces of a name (中苯达 of 苯达莫司汀)."""
    folded = text.casefold()
    parts = [(c, c.casefold()) for c in candidates]  # folded once, not once per term
    times: dict[str, int] = {}  # how often the text says each part, counted once
    out = set()
    for term in longer:
        key = term.casefold()
        said = times_in(folded, key)
        for c, part in parts:
            if c == term:
                continue
            if part in key:
                if part not in times:
                    times[part] = times_in(folded, part)
                if times[part] == said * times_in(key, part):
                    out.add(c)
                    continue
            if term in grown and across(c, term, 2):
                out.add(c)
    return out


def times_in(text: str, key: str) -> int:
    """How often `text` says `key`: as a whole word where it is Latin (not after a Latin
    letter, digit, `_`, `.`, `+`, `#` or `-`; not before a Latin letter, digit, `_`, `+`, `#`
    or a dotted word). Found with `str.find`, not a regex per key: keys are mostly new to
    each article, and compiling them was a tenth of a worker's time on long posts."""
    if not key.isascii() or not key:
        return text.count(key)
    count, start, size = 0, text.find(key), len(key)
    while start >= 0:
        end = start + size
        if not (start and _word_or(text[start - 1], ".+#-")) and not (
                end < len(text) and (_word_or(text[end], "+#") or (
                    text[end] == "." and end + 1 < len(text) and _word_or(text[end + 1], "")))):
            count += 1
            start = text.find(key, end)
        else:
            start = text.find(key, start + 1)
    return count


def _word_or(ch: str, symbols: str) -> bool:
    """`ch` is a Latin letter, a digit, `_` or one of `symbols`. Not a Chinese character:
    Chinese text writes Latin names without spaces (用Markdown格式), and counting 用 as a
    letter made a post that says Markdown twelve times never say it (its candidate went as
    a piece of Markdown格式)."""
    return (ch.isascii() and ch.isalnum()) or ch == "_" or ch in symbols


def term_like(token: str, jieba: rjieba.Jieba) -> bool:
    """Whether a Chinese word of jieba's dictionary could be a term, not a phrase it lists
    (仔细阅读, 提高效率, 几句话, 我妹): none begins with a pronoun or a quantity, or with an
    adverb or an everyday verb before an everyday word."""
    if not _CJK.match(token):
        return True
    if token[0] in _NOT_TERM_START:
        return False
    if len(token) < 4:
        return True
    first = max((p for p in jieba.cut_for_search(token) if 1 < len(p) < len(token)
                 and token.startswith(p)), key=len, default=None)
    if first is None:
        return True
    pos = jieba.tag(first)[0][1]
    return not (pos in {"d", "ad"} or (
        pos in _CLAUSE_POS and commonness.zipf(first) >= _EVERYDAY_VERB
        and commonness.zipf(token[len(first):]) >= COMMON_WORD))


def joins(token: str, pos: str, jieba: rjieba.Jieba) -> bool:
    """Whether a neighbouring word may grow a term: a piece jieba cut from a name it does not
    know (a word of its dictionary is a word: 松花江 does not grow into 哈尔滨), a noun's, a
    rare adjective's (not 影响, 优化: those start clauses)."""
    if not _CJK.search(token) or (len(token) > 1 and jieba.has_word(token)):
        return False
    return pos in _TERM_POS or (pos in {"vn", "an", "a", "b"}
                                and commonness.zipf(token) < COMMON_WORD)


def modifier_char(token: str, pos: str) -> bool:
    """A single character jieba leaves before a word, an adjective, a distinguishing word
    or a prefix (大|口径 of 大口径火炮): before every occurrence of the word, part of its
    term, and the word alone (口径火炮) a fragment. Only before: after a word, such a
    character more often ends the word before it (配合|物 of 配合物近红外)."""
    return lone_char(token) and pos in _MODIFIER_POS


def bound_to_names(candidates: set[str], text: str, jieba: rjieba.Jieba) -> set[str]:
    """The Chinese candidates the text says only as a piece of a systematic name: after a
    locant and a hyphen (甲基噻吩 of 2-氨基-5-甲基噻吩, 乙酰半胱氨酸 of N-乙酰半胱氨酸), after
    a bracketed locant group (硝基苯 of 4-(9-吖啶基氨基)硝基苯, 模型 of GM(1,1)模型), before a
    hyphen and a number or letter (白细胞介素 of 白细胞介素-12), or starting with the class
    character of a formula before it (基金属间化合物 of Fe3Al基金属间化合物). A reader calls
    such a piece a fragment, and jieba, which does not know the name, cuts it there."""
    return {c for c in candidates if _CJK.match(c) and c in text
            and all(_bound(text, at, c, jieba) for at in _iter_places(text, c))}


def _places(text: str, key: str) -> list[int]:
    """Where `text` says `key`, overlaps included (`str.find`: no regex per candidate)."""
    return list(_iter_places(text, key))


def _iter_places(text: str, key: str) -> Iterator[int]:
    """`_places`, one at a time: `bound_to_names` stops at the first place that binds no
    name, mostly the first, where the whole list cost a scan of the text."""
    at = text.find(key)
    while at >= 0:
        yield at
        at = text.find(key, at + 1)


def _bound(text: str, at: int, term: str, jieba: rjieba.Jieba) -> bool:
    """Whether `term`, said at `at`, is glued there to a longer name (`bound_to_names`)."""
    before, end = text[max(at - 40, 0):at], at + len(term)
    return bool((before.endswith(_GLUE_ENDS)
                 and (_LOCANT.search(before) or _BRACKETED.search(before)))
                or (text[end:end + 1] == "-" and text[end + 1:end + 2].isascii()
                    and text[end + 1:end + 2].isalnum())
                or (term[0] in _CLASS_SUFFIX and before[-1:].isascii() and before[-1:].isalnum()
                    and len(term) >= 3 and jieba.has_word(term[1:3])))


def glued(candidates: set[str], text: str, noun_char: Callable[[str], bool],
          token_ends: Callable[[], set[int]]) -> dict[str, str]:
    """For each Chinese candidate the text says at least twice and every time beside the
    same noun characters, the longer word it is a piece of (偏心 of 偏心涡, 冬青 of 沙冬青,
    列车运行 of 列车运行图): grown a character at a time while every occurrence agrees, and
    kept only where it starts and ends between jieba's tokens in at least half of them
    (神经网络 grows to 神经网络模型, never to 神经网络模). A character after a Latin word or a
    number is that word's (型 of 5HZ-3型). jieba cuts such a word where it does not know it,
    and readers call the piece a fragment. `token_ends`: where jieba's tokens start and
    end, asked for only when a candidate grows."""
    out = {}
    for c in candidates:
        if (not all(map(_CJK.match, c)) or text.count(c) < 2  # most: no list is built
                or len(places := _places(text, c)) < 2):
            continue
        first, last = 0, len(c)  # the grown word, as offsets from each occurrence
        best = (0, len(c))
        while last - first < MAX_TERM_CHARS:
            right = {text[at + last:at + last + 1] for at in places}
            left = {text[at + first - 1:at + first] if at + first > 0 else "" for at in places}
            if len(right) == 1 and _CJK.fullmatch(ch := right.pop()) and noun_char(ch):
                last += 1
            elif (len(left) == 1 and _CJK.fullmatch(ch := left.pop()) and noun_char(ch)
                  and not any(_LATIN_END.search(text[max(at + first - 2, 0):at + first - 1])
                              for at in places)):
                first -= 1
            else:
                break
            ends = token_ends()  # the caller's, computed once
            if (2 * sum(at + first in ends for at in places) >= len(places)
                    and 2 * sum(at + last in ends for at in places) >= len(places)):
                best = (first, last)
        if best != (0, len(c)):
            at = places[0]
            out[c] = text[at + best[0]:at + best[1]]
    return out
