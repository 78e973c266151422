"""Round 6 of reader judgments: rules read off what readers struck out, each on a small
article of its own (no trained model needed)."""

from __future__ import annotations

import numpy as np

from hybrid.ingest.keys import abbreviates, label_key, translates
from hybrid.ingest.shapes import odd
from hybrid.ingest.usage import role
from hybrid.learn.features import Features
from hybrid.learn.tag_rules import Candidate, verdict
from hybrid.learn.tag_select import Chooser, _Shown, glossed


def _doc(title: str, body: str, headings: str = "") -> Features:
    return Features(embedding=np.zeros(1), words=[], head_words=[], candidates=[],
                    title=title, lexical=body, text=label_key(f"{title}\n{body}"),
                    heads=label_key(f"{title}\n{headings}"))


def test_a_word_the_text_uses_as_a_file_type_a_variable_or_a_field_label_is_no_tag():
    """`img` said as "disk.img", `rpt` as "rpt 文件", `EPREFIX` as `$EPREFIX`, 译者 as
    "译者：": readers struck each out. Said as a word, or where the title names it, each
    may be one."""
    assert role("下载 disk.img，再把 stage4.img 写入 sd 卡，img 很大", "img") == "a file type"
    assert role("新建 rpt 文件，打开 a.rpt", "rpt") == "a file type"
    assert role("the obj file, two obj files", "obj") == "a file type"
    assert role("ext4 filesystem, ext4 分区", "ext4") is None
    assert role("先设定 $eprefix，再进入 ${eprefix}/bin", "eprefix") == "a variable"
    assert role("译者:小锅;校对:某某 (译者注:已更名)", "译者") == "a field label"
    assert role("用 nginx 反代, nginx: 配置", "nginx") is None
    doc = _doc("Gentoo Prefix 安装", "设定 $EPREFIX 后在 $EPREFIX 下运行 portage。"
               "写好 disk.img 和 a.img，img 只有 2G。")
    for key in ("eprefix", "img"):
        assert verdict(Candidate(key, key, count=2), 0, False, doc).startswith("used as"), key
    assert verdict(Candidate("portage", "portage", count=1), 0, False, doc) is None
    named = _doc("img 格式详解", "disk.img 与 root.img")
    assert verdict(Candidate("img", "img", count=2), 0, False, named) is None


def test_a_file_name_or_a_slug_is_no_tag_even_where_a_heading_names_it():
    """swiftgg's posts head their sections `ViewController.swift` and `Common.xcconfig`, and
    a title written as a slug named every word of `start-next-term-tomorrow`: a heading or the
    title does not make them subjects. An identifier a heading names may be (`UpdatePanel`),
    and a slug the site tags with (`brief-into-ooo`) is the site's."""
    assert odd("Common.xcconfig") == odd("Common.debug") == "file name"
    assert odd("window.close") == odd("Response.Redirect") == "identifier"
    assert odd("Vue.js") is None
    assert odd("start-next-term-tomorrow") == "slug"
    assert odd("docker-compose") != "slug"
    doc = _doc("start-next-term-tomorrow", "Common.xcconfig 保存通用设置。UpdatePanel 局部刷新。",
               headings="Common.xcconfig\nUpdatePanel")
    for surface in ("Common.xcconfig", "start-next-term-tomorrow"):
        c = Candidate(label_key(surface), surface, count=1)
        assert verdict(c, 0, False, doc).startswith("looks like"), surface
    assert verdict(Candidate("updatepanel", "UpdatePanel", count=1), 0, False, doc) is None
    c = Candidate("start-next-term-tomorrow", "start-next-term-tomorrow", count=1)
    assert verdict(c, 3, False, doc) is None


def test_a_site_tag_always_said_where_it_is_used_is_never_carried_to_an_article_without_it():
    """All nine of the site's `mongodb` articles say MongoDB; neighbours carry it to an
    article that never does, and however likely the ranker finds it, it is not shown (the
    tags its authors said on most but not all of its articles still pass when likely)."""
    chooser = Chooser({}, {}, {"mongodb": 9, "docker": 10}, {"mongodb": 9, "docker": 7},
                      base_rate=0.1, learned=True, n_tags=5, vote=0, explained=8)
    for key, shown in (("mongodb", False), ("docker", True)):
        c = Candidate(key, key, 0, -1)
        c.supported = True
        assert (chooser._skip(c, 0.9, 1, key) is None) == shown, key
    c = Candidate("mongodb", "mongodb", 0, -1)
    c.mentioned = True  # this one says it
    assert chooser._skip(c, 0.9, 1, "mongodb") is None



def _plain_chooser() -> Chooser:
    """A chooser with no site vocabulary: only the rules between two tags decide."""
    return Chooser({}, {}, {}, {}, base_rate=0.1, learned=True, n_tags=5, vote=0, explained=8)

def test_a_term_and_its_abbreviation_in_brackets_are_one_tag_and_the_term_stays():
    """手术部位感染(SSI): readers struck out SSI beside 手术部位感染 as a duplicate."""
    text = label_key("手术部位感染(SSI)的危险因素。SSI 增加住院日数。过氧化物酶 (POD) 活性")
    assert abbreviates("ssi", "手术部位感染", text) and abbreviates("pod", "过氧化物酶", text)
    assert not abbreviates("ssi", "住院日数", text)
    chooser = _plain_chooser()
    term, short = _Shown("手术部位感染", "手术部位感染", True), _Shown("ssi", "ssi", True)
    assert chooser._prefer(term, short, text) and not chooser._prefer(short, term, text)


def test_a_name_and_its_gloss_in_brackets_are_one_tag_and_the_word_outside_stays():
    """备忘录(Memento) beside the tag 备忘录模式, Prometheus(普罗米修斯): readers struck the
    second out as a duplicate. The author's word is the one outside the brackets."""
    text = label_key("备忘录模式的要点：备忘录(Memento)存储状态。Prometheus(普罗米修斯)是监控工具。"
                     "备忘(note)不算")
    assert abbreviates("memento", "备忘录模式", text)
    assert not abbreviates("note", "备忘录模式", text)  # two characters: too little to tell
    assert translates("prometheus", "普罗米修斯", text)
    assert glossed("prometheus", "普罗米修斯", text) and glossed("memento", "备忘录模式", text)
    assert not translates("普罗米修斯", "prometheus", text)
    chooser = _plain_chooser()
    name, term = _Shown("prometheus", "prometheus", True), _Shown("普罗米修斯", "普罗米修斯", True)
    assert chooser._prefer(name, term, text) and not chooser._prefer(term, name, text)
    pattern, word = _Shown("备忘录模式", "备忘录模式", True), _Shown("memento", "memento", True)
    assert chooser._prefer(pattern, word, text) and not chooser._prefer(word, pattern, text)


def test_a_familiar_chinese_word_is_a_tag_only_where_the_article_names_it_or_the_site_tags_it():
    """趣味 and 外形 (Zipf 3.9) said twice in a body: readers struck them out. Where a heading
    says 外形, or the site tags with it, it may be a tag; a rarer word (褥疮) needs neither."""
    doc = _doc("网络新闻评论的叙事", "评论的趣味在于互动。读者的趣味各异。"
               "产品外形简洁，外形紧凑。褥疮护理，褥疮预防。")
    for word in ("趣味", "外形"):
        assert verdict(Candidate(word, word, count=2), 0, False, doc) == "an everyday word"
        assert verdict(Candidate(word, word, count=2), 3, False, doc) is None
    assert verdict(Candidate("褥疮", "褥疮", count=2), 0, False, doc) is None
    headed = _doc("网络新闻评论的叙事", "产品外形简洁，外形紧凑。", headings="外形设计")
    assert verdict(Candidate("外形", "外形", count=2), 0, False, headed) is None


def test_a_two_character_word_said_at_most_twice_is_said_in_passing():
    """鳇仿, 右足, 近况: a two-character word the text says once or twice, even in its title,
    is mostly a piece or a passing word (readers, rounds 3-7: 116 struck out, 48 kept): it
    counts as said in passing, and as no central term. Said three times, or one of the
    site's tags, it is a candidate like any other; never said, it is no passing mention."""
    doc = _doc("褥疮的护理", "褥疮预防。压疮护理，压疮分期，压疮评估。")
    twice = Candidate("褥疮", "褥疮", count=2)
    assert verdict(twice, 0, False, doc) is None and twice.weak and not twice.central
    unsaid = Candidate("疥疮", "疥疮", first=-1)
    assert verdict(unsaid, 1, True, doc) is None and not unsaid.weak
    site = Candidate("褥疮", "褥疮", count=2)
    assert verdict(site, 3, False, doc) is None and not site.weak
    thrice = Candidate("压疮", "压疮", count=3)
    assert verdict(thrice, 0, False, doc) is None and not thrice.weak


def test_what_the_title_names_and_the_text_repeats_is_shown_however_the_ranker_doubts_it():
    """单体架构 in the title and said again and again: the ranker, taught by authors who
    rarely tag it, gave it 0.01, and it lost its place on a three-tag list; readers named it
    missing. A word most readers know (外形) so named and repeated still fills no list."""
    doc = _doc("从单体架构到微服务", "单体架构的好处。拆分单体架构。单体架构的代价。外形简洁，"
               "外形紧凑，外形小巧。", headings="外形")
    central = Candidate("单体架构", "单体架构", count=4)
    assert verdict(central, 0, False, doc) is None and central.central
    familiar = Candidate("外形", "外形", count=4)
    assert verdict(familiar, 0, False, doc) is None
    assert not familiar.central and not familiar.weak
    chooser = _plain_chooser()
    assert chooser._skip(central, 0.01, 3, "单体架构") is None
    assert chooser._skip(familiar, 0.01, 3, "外形") == ("the ranker doubts it, and the list "
                                                        "has enough tags")


def test_a_passing_mention_the_ranker_finds_likely_fills_any_list_with_room():
    """SharePoint said once in a post on MOSS, `crypto` once in one on ECDSA: the ranker gave
    them 0.8 and 0.4, and a list of three tags had room, but a passing mention only filled
    shorter lists. Readers accepted 12 of 13 such tags. The ranker's doubt still drops one."""
    chooser = _plain_chooser()
    c = Candidate("sharepoint", "SharePoint", count=1)
    c.weak = True
    assert chooser._skip(c, 0.8, 3, "SharePoint") is None
    assert chooser._skip(c, 0.1, 3, "SharePoint") == "said in passing, and the ranker doubts it"


def test_everyday_words_joined_are_a_term_where_the_title_says_them_and_the_text_again():
    """社会环境 said in passing is a phrase, no term; 艺术教育, in the title and again in the
    abstract, is the paper's subject (readers named it missing where it was refused)."""
    def doc(title: str, body: str) -> Features:
        d = _doc(title, body)
        d.everyday = {"艺术教育", "社会环境"}
        return d
    paper = doc("青少年艺术教育的对策", "艺术教育关乎审美。社会环境影响青少年，社会环境复杂。")
    assert verdict(Candidate("艺术教育", "艺术教育", count=2), 0, False, paper) is None
    assert verdict(Candidate("社会环境", "社会环境", count=2), 0, False, paper) == \
        "everyday words, no term"
    once = doc("青少年艺术教育的对策", "审美关乎成长。")
    assert verdict(Candidate("艺术教育", "艺术教育", count=1), 0, False, once) == \
        "everyday words, no term"


def test_a_role_is_settled_without_reading_every_place(monkeypatch):
    """A word a long post says 100 times was read 100 times for each candidate check; once
    most places agree (on no role, or on one) the rest cannot change the answer."""
    import hybrid.ingest.usage as usage

    reads = []
    real = usage._role
    monkeypatch.setattr(usage, "_role", lambda *a: reads.append(a) or real(*a))
    assert role(" ".join(["swift 很好"] * 100), "swift") is None and len(reads) == 50
    reads.clear()
    assert role(" ".join(["a.img"] * 10) + " img", "img") == "a file type" and len(reads) == 6


def test_a_shape_once_judged_is_remembered():
    """The tagger asks of ~80 candidates an article, and the same words recur."""
    odd.cache_clear()
    assert odd("UserController") == odd("UserController") == "identifier"
    assert odd.cache_info().hits == 1


def test_a_text_that_glosses_no_abbreviation_is_read_once():
    """`abbreviates` looked for 术语(ABC) and 术语 (ABC) at every cut of the term, each a read
    of the whole text, for every pair of chosen tags; every form ends in "(abc)"."""

    class Reads(str):
        reads = 0

        def __contains__(self, part: object) -> bool:
            Reads.reads += 1
            return super().__contains__(part)

    text = Reads("手术部位感染是常见的并发症。" * 500)
    assert not abbreviates("ssi", "手术部位感染", text) and Reads.reads == 1
    assert abbreviates("ssi", "手术部位感染", Reads("手术部位感染(ssi)的预防"))
