"""hybrid.ingest.terms, shapes and commonness: what is a whole term, and what is no tag."""

from __future__ import annotations

import json

import rjieba

from hybrid.ingest import commonness
from hybrid.ingest.segment import Segmenter
from hybrid.ingest.shapes import odd
from hybrid.ingest.terms import term_like, times_in


def test_pieces_of_a_name_jieba_does_not_know_grow_back_into_it():
    """jieba cuts 苯达莫司汀 into 苯达 + 莫司 + 汀 (and 中苯达 once): the text repeats it, so
    the whole name is the candidate and no piece of it is."""
    cands = Segmenter().candidates(
        "苯达莫司汀的测定：人血浆中苯达莫司汀及其代谢物羟基苯达莫司汀").tokens
    assert cands.count("苯达莫司汀") >= 2
    assert not {"苯达", "莫司", "苯达莫司", "中苯达", "莫司汀"} & set(cands)


def test_pieces_of_a_systematic_name_are_no_candidates():
    """A name jieba does not know, cut at a locant (2-氨基-5-乙基呋喃), a bracketed group
    (GM(1,1)模型), a hyphen and a number (干扰素-12) or a formula's class character
    (Ni3Al基金属间化合物), leaves pieces a reader calls fragments."""
    seg = Segmenter()
    cands = set(seg.candidates("以丙酮为原料制得2-氨基-5-乙基呋喃，再由2-氨基-5-乙基呋喃"
                               "与氯化亚锡反应，得到产物").tokens)
    assert "乙基呋喃" not in cands and "氯化亚锡" in cands
    assert "模型" not in seg.candidates("建立GM(1,1)模型预测水位，GM(1,1)模型的精度").tokens
    assert "干扰素" not in seg.candidates("血清干扰素-12升高；干扰素-12水平").tokens
    assert "基金属间化合物" not in seg.candidates(
        "Ni3Al基金属间化合物的制备，Ni3Al基金属间化合物").tokens
    assert "干扰素" in seg.candidates("干扰素-12与干扰素的作用").tokens  # said apart too
    assert "系统调用" in " ".join(seg.candidates("Linux系统调用，Linux系统调用表").tokens)


def test_a_character_beside_every_occurrence_of_a_word_belongs_to_it():
    """jieba leaves 大 of 大口径火炮 alone: 口径火炮 is a fragment, the whole term is not."""
    cands = Segmenter().candidates("大口径火炮的装药设计。大口径火炮的试验，大口径火炮发射").tokens
    assert "口径火炮" not in cands and "大口径火炮" in cands


def test_a_word_always_glued_to_the_same_noun_characters_grows_into_their_word():
    """jieba cuts 偏心涡 as 偏心 + 涡 (and once 偏心 + 涡卷), and 沙冬青 as 对沙 + 冬青: the text
    never says 偏心 or 冬青 apart, so the longer word is the candidate, not the piece. A word
    always followed by a function character (的) stays as it is."""
    cands = set(Segmenter().candidates(
        "贯流风机内部偏心涡演化规律的数值分析\n贯流风机内部偏心涡增大,偏心涡卷吸的区域增强,"
        "偏心涡的涡核移动。不同催芽方法对沙冬青种子萌发的影响,提高沙冬青的萌发率。"
        "贯流风机的转速").tokens)
    assert {"偏心涡", "沙冬青", "贯流风机"} <= cands
    assert not {"偏心", "冬青"} & cands
    machine = set(Segmenter().candidates(
        "1LZ-3型复式作业机的设计\n介绍了1LZ-3型复式作业机的结构,1LZ-3型复式作业机的试验").tokens)
    assert "复式作业机" in machine and not any(c.startswith("型") for c in machine)


def test_a_word_never_said_apart_from_its_term_is_no_candidate():
    seg = Segmenter()
    assert "图谱" not in seg.candidates("RAG与知识图谱：知识图谱的构建").tokens
    cands = seg.candidates("functional programming is great; functional programming rocks")
    assert "functional programming" in cands.tokens and "functional" not in cands.tokens
    cands = seg.candidates("GitHub Pages 和 GitHub Pages 还有 GitHub").tokens
    assert "GitHub" in cands  # said alone too


def test_clauses_and_listed_phrases_are_no_terms():
    seg = Segmenter()
    cands = seg.candidates("醒脑静联合纳洛酮治疗急性酒精中毒。"
                           "观察醒脑静联合纳洛酮治疗急性酒精中毒的疗效").tokens
    assert "急性酒精中毒" in cands and "纳洛酮" in cands
    assert not {"纳洛酮治疗急性", "治疗急性酒精中毒", "静联合纳洛酮"} & set(cands)
    jieba = rjieba.Jieba()  # its dictionary lists phrases: 仔细阅读, 提高效率, 几句话
    assert not any(term_like(w, jieba) for w in ("仔细阅读", "提高效率", "几句话", "我妹"))
    assert all(term_like(w, jieba) for w in ("知识图谱", "强化学习", "一致性哈希", "数据量"))


def test_phrases_of_everyday_words_are_marked():
    cands = Segmenter().candidates("研究社会环境。社会环境的研究，社会环境很重要")
    assert "社会环境" in cands.everyday


def test_dotted_names_stay_whole():
    cands = Segmenter().candidates("使用 Node.js 和 ASP.NET 与 .NET Core，以及 sql.Date。").tokens
    assert {"Node.js", "ASP.NET", ".NET", "sql.Date"} <= set(cands)
    assert not {"Node", "js", "NET"} & set(cands)


def test_strings_shaped_like_code_files_or_quantities_are_odd():
    for surface in ("myCart", "IsNullOrEmpty", "UserController", "group_id", "sql.Date",
                    "rsyslog.conf", "index.js", "16GB", "GHz", "0xFFFF", "D2H", "deploy-app",
                    "numbbbbb"):
        assert odd(surface), surface
    for surface in ("Node.js", "ASP.NET", ".NET", "JavaScript", "iPhone", "eBPF", "GitHub",
                    "Kubernetes", "docker-compose", "GitHub Actions", "C#", "etcd", "AAAA"):
        assert odd(surface) is None, surface


def test_commonness_tells_everyday_words_from_terms(tmp_path):
    commonness.load(str(tmp_path))
    assert commonness.zipf("问题") > commonness.zipf("数据库") > commonness.zipf("知识图谱")
    assert commonness.zipf("network") > commonness.zipf("python") > commonness.zipf("etcd")
    assert commonness.zipf("Network") == commonness.zipf("network")


def test_commonness_table_is_kept_in_the_cache_and_a_broken_cache_only_costs_time(
        tmp_path, monkeypatch):
    monkeypatch.setattr(commonness, "_words", None)
    table = commonness._table(str(tmp_path))
    (kept,) = tmp_path.glob("commonness-*.json")
    assert json.loads(kept.read_text(encoding="utf-8")) == table
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert commonness._table(str(not_a_folder / "cache")) == table  # built, not kept


def test_times_in_counts_latin_keys_as_whole_words_only():
    text = "c++ 与 c 语言; node.js 不是 node. 用docker, docker-compose, docker 和 docker."
    assert times_in(text, "c") == 1  # not in "c++"
    assert times_in(text, "node") == 1  # "node." ends a sentence; "node.js" is another word
    assert times_in(text, "docker") == 4  # "用docker" too: Chinese writes no space before it
    assert times_in("用Markdown格式写,Markdown编辑器", "markdown") == 0  # a key, not folded
    assert times_in("用markdown格式写,markdown编辑器", "markdown") == 2
    assert times_in("aaa", "aa") == 0 and times_in("aa aa", "aa") == 2
    assert times_in("知识图谱与图谱", "图谱") == 2


def test_familiar_verbs_are_actions_and_rare_ones_may_be_terms():
    """合成, 测定 and 优化 say what was done, and readers strike them out even where the
    title says them; 凋亡 and 传热, rare, are the subjects of their papers."""
    actions = Segmenter().candidates(
        "奥氮平的合成\n以丙二腈为原料缩合制得奥氮平,经优化和测定,研究心肌细胞凋亡与传热").actions
    assert {"合成", "测定", "优化"} <= actions
    assert not {"凋亡", "传热", "奥氮平"} & actions


def test_terms_jieba_tags_as_verbs_or_idioms_are_candidates():
    """jieba tags 死锁 a verb (the bundled dictionary lists it as a term, but jieba keeps its
    own tag), 虚拟机 and 多线程 distinguishing words and 乱序执行 an idiom: each is the
    article's term, and none was a candidate."""
    cands = Segmenter().candidates(
        "多线程程序的死锁\n两个线程互相等待就会死锁。在虚拟机里乱序执行，乱序执行的指令，"
        "乱序执行的结果").tokens
    assert {"死锁", "虚拟机", "多线程", "乱序执行"} <= set(cands)


def test_a_site_tag_jieba_tags_as_a_verb_is_a_candidate_unless_a_familiar_verb():
    """A word most readers know that jieba tags a verb is used as one (模拟 of 数值模拟), even
    where a site's authors once tagged it."""
    text = "谈谈复盘\n每次项目结束都复盘一次，用软件模拟一次"
    assert "复盘" not in Segmenter().candidates(text).tokens
    cands = Segmenter(vocabulary=["复盘", "模拟"]).candidates(text).tokens
    assert "复盘" in cands and "模拟" not in cands


def test_sayings_and_everyday_words_jieba_tags_as_idioms_are_no_candidates():
    """A saying is said once (退而求其次); everyday words jieba lists as one idiom or
    distinguishing word (错误信息, 同一个) are no term, however often said."""
    cands = set(Segmenter().candidates(
        "退而求其次的办法\n只能退而求其次。错误信息很长，错误信息看不懂，错误信息太多。"
        "同一个文件，同一个目录").tokens)
    assert not {"退而求其次", "错误信息", "同一个"} & cands


def test_a_two_character_distinguishing_word_is_no_candidate():
    """超时/b is rare enough (Zipf 3.36), but two characters are mostly no term."""
    text = "请求超时怎么办\n请求超时了，连接超时，读取超时"
    assert "超时" not in Segmenter().candidates(text).tokens


def test_each_candidate_is_counted_once_however_many_terms_hold_it(monkeypatch):
    """`pieces_of` counted a candidate in the text again for every longer term that holds
    it; long posts bring dozens of each."""
    from hybrid.ingest import terms

    counted = []
    monkeypatch.setattr(terms, "times_in", lambda text, key: counted.append((text, key))
                        or times_in(text, key))
    text = "知识图谱与图谱构建，知识图谱"
    assert terms.pieces_of({"知识图谱", "图谱构建"}, set(), {"图谱", "知识"}, text) == {"知识"}
    assert counted.count((text, "图谱")) == 1


def test_a_piece_of_a_name_is_looked_for_only_until_a_place_says_it_alone(monkeypatch):
    """`bound_to_names` listed every place a candidate is said before it read the first;
    most are said alone there, and one is enough."""
    from hybrid.ingest import terms

    seen = []
    real = terms._iter_places
    monkeypatch.setattr(terms, "_iter_places", lambda text, key: (
        seen.append(at) or at for at in real(text, key)))
    text = "，".join(["氯化亚锡反应"] * 50)
    assert terms.bound_to_names({"氯化亚锡"}, text, rjieba.Jieba()) == set()
    assert len(seen) == 1
