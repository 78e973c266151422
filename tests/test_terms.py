"""hybrid.ingest.terms, shapes and commonness: what is a whole term, and what is no tag."""

from __future__ import annotations

import json

import rjieba

from hybrid.ingest import commonness
from hybrid.ingest.segment import Segmenter
from hybrid.ingest.shapes import odd
from hybrid.ingest.terms import term_like


def test_pieces_of_a_name_jieba_does_not_know_grow_back_into_it():
    """jieba cuts 苯达莫司汀 into 苯达 + 莫司 + 汀 (and 中苯达 once): the text repeats it, so
    the whole name is the candidate and no piece of it is."""
    cands = Segmenter().candidates(
        "苯达莫司汀的测定：人血浆中苯达莫司汀及其代谢物羟基苯达莫司汀").tokens
    assert cands.count("苯达莫司汀") >= 2
    assert not {"苯达", "莫司", "苯达莫司", "中苯达", "莫司汀"} & set(cands)


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
                    "rsyslog.conf", "index.js", "16GB", "GHz", "0xFFFF", "D2H", "deploy-app"):
        assert odd(surface), surface
    for surface in ("Node.js", "ASP.NET", ".NET", "JavaScript", "iPhone", "eBPF", "GitHub",
                    "Kubernetes", "docker-compose", "GitHub Actions", "C#", "etcd"):
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
