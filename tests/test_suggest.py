"""`hybrid taxonomy suggest`: new categories, merges, dead categories, one proposal file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from helpers import hybrid, shared_data
from llm_stub import answer

from hybrid import data
from hybrid.config import Config
from hybrid.evaluation.proposal_page import proposal_html
from hybrid.ingest.article import publication_date
from hybrid.ingest.records import read_jsonl
from hybrid.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy
from hybrid.taxonomy.suggest.clusters import (
    adopt_noise,
    carried_by,
    claim,
    find_groups,
    keep_members,
    merge_close,
)
from hybrid.taxonomy.suggest.corpus import Corpus
from hybrid.taxonomy.suggest.dead import dead_categories
from hybrid.taxonomy.suggest.describe import draft_name, list_style, name_taken
from hybrid.taxonomy.suggest.fit import badly_fitted, lacking
from hybrid.taxonomy.suggest.naming import Namer, check_name
from hybrid.taxonomy.suggest.proposal import NewCategory, read_proposal
from hybrid.taxonomy.suggest.run import min_size
from hybrid.taxonomy.suggest.terms import Term, distinctive_terms

TAXONOMY = parse_taxonomy([{"name": "数据库", "aliases": ["Database"]}, "前端开发", "安全"])
QUANTUM = ["量子比特", "量子门", "叠加态", "量子纠缠", "Qiskit", "量子退火", "Shor 算法",
           "量子纠错", "超导量子芯片", "量子测量"]


def quantum_articles(n: int = 24) -> list[dict]:
    """A subject the sample list lacks, in articles of its own words."""
    out = []
    for i in range(n):
        a, b, c = (QUANTUM[(i + k) % len(QUANTUM)] for k in (0, 3, 7))
        out.append({"id": f"q{i:02d}", "title": f"量子计算笔记 {i}：{a}与{b}",
                    "content": f"量子计算用{a}表示信息。本文用 Qiskit 演示{b}和{c}，"
                               f"并讨论量子比特的退相干、{a}的测量与量子线路的编译。"
                               f"量子算法如 Shor 算法与 Grover 搜索依赖{c}。",
                    "tags": ["量子计算", a], "date": f"2024-0{1 + i % 9}-15"})
    return out


# ---- the proposal file is a taxonomy file ------------------------------------------------

def test_proposal_marks_are_read_past_and_a_removal_leaves_the_list():
    taxonomy = parse_taxonomy({"categories": [
        {"name": "数据库", "aliases": ["Redis"], "articles": ["a1"],
         "proposal": {"action": "merge", "evidence": {"confused_out_of_fold": 3}}},
        {"name": "量子计算", "proposal": {"action": "add", "evidence": {}}, "articles": []},
        {"name": "杂项", "proposal": {"action": "remove"}, "articles": ["a2"]}]})
    assert taxonomy.names == ["数据库", "量子计算"]
    assert taxonomy.resolve("Redis") == "数据库"


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "a", "proposal": {"action": "rename"}}, "'action' is one of"),
    ({"name": "a", "proposal": "add"}, "'action' is one of"),
    ({"name": "a", "articles": [1, 2]}, "'articles' must be a list"),
])
def test_a_bad_proposal_mark_is_an_error_naming_the_entry(entry, message):
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy([entry, "b"])


def test_a_date_is_read_leniently():
    assert publication_date("2025-03-04T09:21:00+08:00") == date(2025, 3, 4)
    assert publication_date("2023/07/14") == date(2023, 7, 14)
    assert publication_date("yesterday") is None and publication_date(20230714) is None


# ---- the parts ----------------------------------------------------------------------------

def test_distinctive_terms_set_a_group_apart_and_need_support():
    terms = [["量子比特", "Qiskit", "教程"]] * 6 + [["Redis", "索引", "教程"]] * 6 + [["孤例"]]
    quantum, redis = distinctive_terms(terms, [list(range(6)), list(range(6, 13))], top=3)
    assert {t.text for t in quantum[:2]} == {"量子比特", "Qiskit"}
    assert "教程" not in [t.text for t in quantum[:2]]  # shared by both groups
    assert "孤例" not in [t.text for t in redis]  # one article's word names no group
    qubit = quantum[0]
    assert qubit.articles == 6 and qubit.lift == pytest.approx(13 / 6)  # 6 of 6 vs 6 of 13


def term(text: str, articles: int = 5, lift: float = 10.0) -> Term:
    return Term(text, 0.0, articles, lift)


SPORT_TITLES = ["篮球赛事发展研究", "作为权利的体育", "学校体育改革", "竞技体育与大众体育",
                "体育强国之路", "马拉松赛事的组织"]


def test_a_draft_name_is_the_one_term_most_titles_say():
    """Readers named a group by the subject its titles share (体育), not by its most
    distinctive term (one article's detail), nor "A / B"."""
    style = list_style(TAXONOMY)
    taken = name_taken(TAXONOMY, set())
    terms = [term("文献资料", 10), term("马拉松"), term("体育"), term("学校体育")]
    assert draft_name(terms, SPORT_TITLES, style, taken) == "体育"
    # no title says any: the most distinctive
    assert draft_name(terms, ["无关的题目"] * 6, style, taken) == "文献资料"


def test_a_draft_name_is_no_word_every_article_uses_nor_a_commonest_or_genre_word():
    style = list_style(TAXONOMY)
    taken = name_taken(TAXONOMY, set())
    titles = ["中国体育发展研究进展", "中国体育的发展与研究进展", "体育发展研究进展"]
    assert draft_name([term("发展"), term("中国"), term("研究进展"), term("体育", lift=2.0),
                       term("体育强国")], titles, style, taken) == "体育强国"


def test_among_equals_a_draft_name_follows_the_list_style():
    """光学 beside 器件, both in one title, for a list of 医学, 力学, 光学工程: the ending
    its names share; a Latin term for a Chinese list only where titles say it more."""
    listed = parse_taxonomy(["医学", "力学", "光学工程", "数学"])
    style, taken = list_style(listed), name_taken(listed, set())
    titles = ["有机发光器件的制备", "光学薄膜", "ITO 电极", "ITO 薄膜的表征"]
    assert draft_name([term("器件"), term("光学")], titles, style, taken) == "光学"
    assert draft_name([term("ITO"), term("器件")], ["ITO 器件"], style, taken) == "器件"
    assert draft_name([term("ITO"), term("器件")], titles, style, taken) == "ITO"


def test_a_draft_name_avoids_taken_names():
    taken = name_taken(TAXONOMY, {"量子计算"})
    style = list_style(TAXONOMY)
    titles = ["数据库与量子比特", "量子比特入门"]
    assert draft_name([term("database"), term("量子比特")], titles, style, taken) == "量子比特"
    assert draft_name([term("量子计算")], titles, style, taken) is None


@pytest.mark.parametrize(("name", "ok"), [
    ("量子计算", True), ("数据库", False), ("database", False), ("这是一个句子，不是名字", False),
    ("<b>x</b>", False), ("a b c d e f g", False), (42, False)])
def test_an_llm_name_is_checked_like_every_llm_answer(name, ok):
    got, why = check_name(name, name_taken(TAXONOMY, set()))
    assert (got is not None) is ok and (why is None) is ok


def corpus(labels, dates, n_dims=4):
    n = len(labels)
    return Corpus([f"a{i}" for i in range(n)], [""] * n, labels, [[] for _ in labels], dates,
                  [], np.eye(n, n_dims), np.zeros((n, 3)), np.zeros(n),
                  [[] for _ in labels], [])


def test_dead_categories_are_the_rare_and_the_silent():
    labels = [["数据库"]] * 6 + [["前端开发"]] * 6 + [["安全"]] * 2
    dates = [date(2024, 6, 1)] * 6 + [date(2020, 1, 1)] * 6 + [date(2024, 1, 1)] * 2
    removals = {r.name: r for r in dead_categories(corpus(labels, dates), TAXONOMY, 5, 24)}
    assert set(removals) == {"前端开发", "安全"}
    assert "fewer than 5" in removals["安全"].reason and removals["安全"].articles == ["a12",
                                                                                      "a13"]
    assert "no article in the last 24 months" in removals["前端开发"].reason
    undated = dead_categories(corpus(labels, [None] * 14), TAXONOMY, 5, 24)
    assert [r.name for r in undated] == ["安全"]  # no date, no conclusion about silence


def test_a_field_alone_lacks_its_discipline_even_when_most_of_its_disciplines_are_missing():
    """数据库 is given with another category on 2 of its 10 articles (its other disciplines
    are what the list lacks): its 8 lone articles are badly fitted. 前端开发 is never given
    with another: alone is its habit. A confident unlabelled article fits."""
    labels = [["数据库", "安全"]] * 2 + [["数据库"]] * 8 + [["前端开发"]] * 5 + [[]] * 2
    n = len(labels)
    proba = np.full((n, 3), 0.1)
    confidence = np.array([0.95] * (n - 1) + [0.3])
    data = Corpus([f"a{i}" for i in range(n)], [""] * n, labels, [[] for _ in labels],
                  [None] * n, [], np.eye(n, 4), proba, confidence, [[] for _ in labels], [])
    assert list(badly_fitted(data, TAXONOMY.names, 0.9)) == [*range(2, 10), n - 1]
    assert lacking(data) == [*range(2, 10), n - 2, n - 1]  # the confident one lacks one too


def test_a_group_claims_the_articles_lacking_a_label_that_are_nearer_it_than_any_category():
    """The model had to file them somewhere, and was sure: it never knew the missing one."""
    unit = np.array([[1.0, 0.0], [0.99, 0.14], [0.1, 1.0], [0.8, 0.6], [0.95, -0.3]])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    groups = claim(unit, [np.array([0, 1])], np.array([2, 3, 4]), np.array([[0.0, 1.0]]),
                   np.zeros((len(unit), 1), dtype=bool))
    assert [list(g) for g in groups] == [[0, 1, 3, 4]]  # 2 is nearer the category


def test_a_small_subject_of_a_large_site_can_come_back():
    """A hidden subject of 15 articles among 2,000: a group of half of it (8) at 60% purity
    holds at most 13 articles, so the least size of a proposal must not exceed that."""
    assert min_size(2000, Config()) <= 13
    assert min_size(200, Config()) == Config().suggest_min_articles


def test_groups_are_found_and_noise_joins_only_what_it_is_closer_to():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16) * 4
    points = np.vstack([c + rng.normal(scale=0.3, size=(30, 16)) for c in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    groups = find_groups(points, 8)
    blob = {g: {k // 30 for k in np.flatnonzero(groups == g)} for g in set(groups) - {-1}}
    assert all(len(b) == 1 for b in blob.values()) and len(blob) >= 3  # none spans two
    # categories half alike: pieces of one blob are more alike, two blobs are not
    categories = np.eye(3, 16) + np.eye(1, 16, 15)
    merged = merge_close(points, groups, categories / np.sqrt(2))
    assert len(set(merged) - {-1}) == 3
    unit = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.8, 0.6]])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    nothing = np.zeros((len(unit), 1), dtype=bool)  # no article carries the category
    adopted = adopt_noise(unit, np.array([0, -1, -1, -1]), np.array([[0.0, 1.0]]), nothing)
    assert list(adopted) == [0, 0, -1, 0]  # the third is nearer the category
    kept = keep_members(unit, np.array([0, 0, 0, -1]), np.array([[0.0, 1.0]]), nothing)
    assert list(kept) == [0, 0, -1, -1]  # a member nearer the category is no evidence


def test_a_category_the_article_already_carries_is_no_place_the_list_has_for_it():
    """A paper filed under its field (the first prototype) and lacking its discipline is
    near the field's prototype, which holds its discipline's papers: it stays in its group
    and is claimed by it. Another category near it still takes it out."""
    unit = np.array([[1.0, 0.0], [0.99, 0.14], [0.3, 1.0], [0.35, 1.0]])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    field, other = np.array([[0.0, 1.0]]), np.array([[0.0, 1.0], [0.3, 1.0]])
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    carried = carried_by([[], [], ["农学"], ["农学"]], ["农学", "作物学"])
    assert carried.tolist() == [[False, False]] * 2 + [[True, False]] * 2
    assert list(keep_members(unit, np.array([0, 0, 0, -1]), field,
                             np.zeros_like(carried[:, :1]))) == [0, 0, -1, -1]
    assert list(keep_members(unit, np.array([0, 0, 0, -1]), field, carried[:, :1])) == \
        [0, 0, 0, -1]
    assert list(keep_members(unit, np.array([0, 0, 0, -1]), other, carried)) == [0, 0, -1, -1]
    assert list(adopt_noise(unit, np.array([0, 0, -1, -1]), field, carried[:, :1])) == \
        [0, 0, 0, 0]
    assert [list(g) for g in claim(unit, [np.array([0, 1])], np.array([2, 3]), field,
                                   carried[:, :1])] == [[0, 1, 2, 3]]


# ---- the command ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def articles_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suggest") / "articles.jsonl"
    rows = [r for r in read_jsonl(data.path("sample_articles.jsonl"))] + quantum_articles()
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture(scope="module")
def proposal_file(sample_model_dir, articles_file, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("proposal") / "proposal.json"
    result = hybrid("taxonomy", "suggest", "--model", str(sample_model_dir), "--data",
                    str(articles_file), "--out", str(out), cache_dir=cache_dir)
    assert result.exit_code == 0, result.output
    assert "nothing changes until a person accepts" in result.output
    return out


def test_suggest_proposes_the_subject_the_list_lacks(proposal_file):
    taxonomy, marked = read_proposal(proposal_file)
    added = [m for m in marked if m.action == "add"]
    quantum = [m for m in added if sum(i.startswith("q") for i in m.articles) >= 12]
    assert len(quantum) == 1, [(m.name, m.articles) for m in added]
    new = quantum[0]
    assert sum(i.startswith("q") for i in new.articles) / len(new.articles) >= 0.8
    assert new.name in taxonomy.names
    assert len(new.evidence["examples"]) == 5 and new.entry["keywords"]
    assert new.evidence["growth"]["by_year"] == {"2024": len(new.articles)}
    assert any(t["tag"] == "量子计算" for t in new.evidence["frequent_tags"])
    assert new.evidence["nearest_category"]["name"] in load_taxonomy(
        data.path("sample_taxonomy.json")).names


def test_diff_and_retrain_take_the_proposal_as_it_is(proposal_file, sample_model_dir,
                                                     articles_file, cache_dir, tmp_path):
    current = data.path("sample_taxonomy.json")
    result = hybrid("taxonomy", "diff", str(current), str(proposal_file), cache_dir=cache_dir)
    assert result.exit_code == 0, result.output
    added = [m.name for m in read_proposal(proposal_file)[1] if m.action == "add"]
    assert all(f"added    {name}" in result.output for name in added)
    result = hybrid("retrain", "--taxonomy", str(proposal_file), "--model",
                    str(sample_model_dir), "--data", str(data.path("sample_articles.jsonl")),
                    "--out", str(tmp_path / "retrained"), cache_dir=cache_dir)
    assert result.exit_code == 0, result.output
    assert set(added) <= set(load_taxonomy(tmp_path / "retrained" / "taxonomy.json").names)


def test_suggest_changes_nothing_and_never_writes_over_an_input(
        sample_model_dir, articles_file, cache_dir):
    before = {p: p.read_bytes() for p in Path(sample_model_dir).iterdir()}
    result = hybrid("taxonomy", "suggest", "--model", str(sample_model_dir), "--data",
                    str(articles_file), "--out", str(articles_file), cache_dir=cache_dir)
    assert result.exit_code == 2
    assert {p: p.read_bytes() for p in Path(sample_model_dir).iterdir()} == before


def test_the_report_section_shows_each_change(proposal_file):
    _, marked = read_proposal(proposal_file)
    page = proposal_html(proposal_file, lambda frame, index: frame.to_html(index=index))
    assert "Proposed changes to the category list" in page
    for m in marked:
        assert m.name in page


def test_an_llm_names_a_proposal_unless_its_name_is_taken(tmp_path, stub):
    new = NewCategory("量子比特 / 量子门", "draft", ["量子比特"], ["量子比特"], [],
                      ["量子计算笔记 1"], ["q1"], {}, "数据库", 0.3)
    server = stub(lambda body, n: answer({"name": "数据库" if n == 1 else "量子计算",
                                          "description": "量子计算的原理与编程。"}))
    config = Config(cache_dir=str(tmp_path), llm_base_url=server.url, llm_model="m")
    namer = Namer(config, TAXONOMY)
    namer.name(new, name_taken(TAXONOMY, set()))
    assert new.name == "量子比特 / 量子门" and new.llm["status"] == "rejected"
    new.terms = ["量子门"]  # another prompt: not the cached answer
    namer.name(new, name_taken(TAXONOMY, set()))
    assert (new.name, new.named_by) == ("量子计算", "llm")
    assert new.description == "量子计算的原理与编程。"
    assert "数据库" in server.requests[0]["messages"][0]["content"]  # it was told the list
    namer.close()


@pytest.mark.slow
def test_a_hidden_category_of_a_dev_set_comes_back(tmp_path, config):
    """oec2003 with 跑步 and 读书 hidden: at least one comes back as a proposal."""
    from dataclasses import replace

    from hybrid.ingest.records import load_articles
    from hybrid.learn.model import HybridModel
    from hybrid.taxonomy.suggest import suggest
    from hybrid.taxonomy.suggest.articles import Articles

    path = shared_data("oec2003.jsonl")
    hidden = {"跑步", "读书"}
    articles = load_articles(path, config)
    shown = [replace(a, categories=[c for c in a.categories if c not in hidden])
             for a in articles]
    listed = [e for e in json.loads((path.parent / "taxonomies" / "oec2003.json").read_text(
        "utf-8")) if e["name"] not in hidden]
    model = HybridModel.train(shown, parse_taxonomy(listed), config)
    proposal = suggest(model, Articles(shown, "oec2003"), config)
    gold = {a.id: a.categories for a in articles}
    size = {h: sum(h in cats for cats in gold.values()) for h in hidden}
    back = {h for new in proposal.additions for h in hidden
            if sum(h in gold[i] for i in new.articles) >= 0.6 * new.size
            and sum(h in gold[i] for i in new.articles) >= 0.5 * size[h]}
    assert back


def _oof_model(given: list[list[str]], proba: np.ndarray):
    """What `find_merges` reads of a model: its list, training labels and out-of-fold record."""
    from types import SimpleNamespace

    return SimpleNamespace(
        taxonomy=parse_taxonomy(["A", "B", "C", "D"]), train_categories=given,
        train_ids=[f"a{i}" for i in range(len(given))],
        train_titles=[f"t{i}" for i in range(len(given))],
        classifier=SimpleNamespace(oof_rows_=np.arange(len(given)), oof_proba_=proba))


def test_merges_are_the_confused_pairs_not_the_labels_given_together():
    from hybrid.taxonomy.suggest.merges import find_merges

    rng = np.random.default_rng(0)
    given, rows = [], []
    for _ in range(40):  # A and B always together (a field and its discipline): both right
        given.append(["A", "B"])
        rows.append([0.9, 0.9, 0.05, 0.05])
    for i in range(40):  # C and D: the model takes every third for the other
        name = "C" if i % 2 else "D"
        given.append([name])
        sure = [0.05, 0.05, 0.9, 0.1] if name == "C" else [0.05, 0.05, 0.1, 0.9]
        rows.append(sure[:2] + sure[2:][::-1] if i % 3 == 0 else sure)
    proba = np.clip(np.array(rows) + rng.normal(scale=0.01, size=(80, 4)), 0.01, 1.0)
    found = find_merges(_oof_model(given, proba))
    assert [{m.into, m.merged} for m in found.merges] == [{"C", "D"}]
    # a category of one article, which the model hardly gives it: by cleanlab's threshold
    # (its mean probability) most articles would "overlap" with it
    given = [["A"]] * 40 + [["C"]] * 40 + [["D"]]
    rows = [[0.9, 0.02, 0.1, 0.05]] * 40 + [[0.05, 0.02, 0.9, 0.05]] * 40 + [[0.6, 0.02, 0.3, 0.03]]
    proba = np.clip(np.array(rows) + rng.normal(scale=0.01, size=(81, 4)), 0.01, 1.0)
    assert [m.merged for m in find_merges(_oof_model(given, proba)).merges] == ["D"]
    assert find_merges(_oof_model(given, proba), min_articles=5).merges == []


def test_cluster_leaves_out_the_categories_its_rows_and_the_claimed_carry(monkeypatch):
    """`cluster` hands keeping, adopting and claiming the carried categories of the articles
    each compares (the last two carry the field): all four end in one group."""
    from hybrid.taxonomy.suggest import clusters
    unit = np.array([[1.0, 0.0], [0.99, 0.14], [0.3, 1.0], [0.35, 1.0]])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    n = len(unit)
    corpus = Corpus([f"a{i}" for i in range(n)], [""] * n, [[], [], ["农学"], ["农学"]],
                    [[] for _ in range(n)], [None] * n, [None] * n, unit, np.zeros((n, 1)),
                    np.zeros(n), [[] for _ in range(n)], [])
    monkeypatch.setattr(clusters, "cluster_features", lambda c, rows, names: unit[rows])
    monkeypatch.setattr(clusters, "find_groups", lambda f, size: np.array([0, 0, 0]))
    field = np.array([[0.0, 1.0]])
    carried = carried_by(corpus.labels, ["农学"])
    found = clusters.cluster(corpus, np.array([0, 1, 2]), ["农学"], field, carried, 2,
                             np.array([3]))
    assert [list(g) for g in found] == [[0, 1, 2, 3]]
