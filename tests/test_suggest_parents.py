"""`taxonomy suggest` proposes the parent a two-level list lacks: alike categories that sit
alone where the site's others sit under a parent."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
from sklearn.preprocessing import normalize

from hybrid.evaluation.proposal_page import proposal_html
from hybrid.ingest.segment import Segmenter
from hybrid.taxonomy import parse_taxonomy
from hybrid.taxonomy.suggest.corpus import Corpus
from hybrid.taxonomy.suggest.parents import nesting, orphan_groups, parent_groups, shared_name
from hybrid.taxonomy.suggest.proposal import NewCategory, Proposal, write_proposal
from hybrid.taxonomy.suggest.run import described_parents


def unit(*values: float) -> np.ndarray:
    return normalize(np.array([values], dtype=float))[0]


# 医学 holds 药学 and 口腔医学; 工学 is missing from the list, so 机械工程, 材料科学 and
# 电气工程 sit alone; 哲学 is a field without disciplines, far from all of them
LABELS = ([["医学", "药学"]] * 6 + [["医学", "口腔医学"]] * 5 + [["医学"]] * 2
          + [["机械工程"]] * 5 + [["材料科学"]] * 4 + [["电气工程"]] * 4 + [["哲学"]] * 3)
PROTOTYPES = {"医学": unit(1, 0, 0, 0), "药学": unit(1, 0.5, 0, 0),
              "口腔医学": unit(1, -0.5, 0, 0), "机械工程": unit(0, 0, 1, 0.4),
              "材料科学": unit(0, 0, 1, -0.4), "电气工程": unit(0, 0.2, 1, 0),
              "哲学": unit(0.1, 0, 0.1, -1)}


def test_the_site_nests_a_category_under_the_larger_one_most_of_its_articles_carry():
    assert nesting(LABELS) == {"药学": "医学", "口腔医学": "医学"}
    # carried together, but neither is larger: no nesting
    assert nesting([["前端", "后端"]] * 4) == {}


def test_alike_categories_without_a_parent_are_proposed_a_parent_with_their_articles():
    assert orphan_groups(LABELS, PROTOTYPES) == [["机械工程", "材料科学", "电气工程"]]
    (children, rows), = parent_groups(LABELS, LABELS, PROTOTYPES, 5)
    assert sorted(children) == ["机械工程", "材料科学", "电气工程"]
    assert list(rows) == list(range(13, 26))
    assert parent_groups(LABELS, LABELS, PROTOTYPES, 14) == []  # fewer articles than a group


def test_an_unlabelled_article_the_model_files_under_an_orphan_is_held_by_its_parent():
    filed = [*LABELS, ["电气工程"]]
    (_, rows), = parent_groups([*LABELS, []], filed, PROTOTYPES, 5)
    assert rows[-1] == len(LABELS)


def test_a_flat_site_or_one_whose_orphans_are_unalike_is_proposed_no_parent():
    flat = [["机械工程"]] * 5 + [["材料科学"]] * 4 + [["电气工程"]] * 4
    assert orphan_groups(flat, PROTOTYPES) == []
    apart = {**PROTOTYPES, "机械工程": unit(0, 0, 1, 0), "材料科学": unit(0, 1, 0, 0),
             "电气工程": unit(0, 0, 0, 1)}
    assert orphan_groups(LABELS, apart) == []
    # a flat site where a few labels happen to nest (2 of 33 articles): no two levels
    incidental = [["医学", "药学"], ["医学", "口腔医学"], *LABELS[11:], *[["医学"]] * 18]
    assert nesting(incidental) == {"药学": "医学", "口腔医学": "医学"}
    assert orphan_groups(incidental, PROTOTYPES) == []


def test_a_proposed_parent_says_which_categories_it_would_hold(tmp_path):
    new = NewCategory(name="工程", description="", keywords=[], terms=[], tags=[],
                      examples=[], articles=["a", "b"], growth={}, nearest="医学",
                      nearest_similarity=0.2, parent_of=["机械工程", "电气工程"])
    assert new.evidence()["parent_of"] == ["机械工程", "电气工程"]
    proposal = Proposal(parse_taxonomy([{"name": "医学"}]), [new], [], [], {})
    assert "parent of 机械工程, 电气工程" in proposal.summary("p.json")
    out = write_proposal(proposal, tmp_path / "proposal.json", [])
    page = proposal_html(out, lambda frame, index: frame.to_html(index=index))
    assert "parent of 机械工程, 电气工程" in page


def test_a_parent_is_named_by_the_word_its_childrens_names_share():
    cut = Segmenter().jieba.cut
    assert shared_name(["理论经济学", "应用经济学"], cut) == "经济学"
    assert shared_name(["中医学/中药学", "基础医学/临床医学", "口腔医学", "药学"], cut) == "医学"
    assert shared_name(["机械工程", "电气工程", "材料科学与工程", "数学", "力学"], cut) == "工程"
    # nothing shared, or shared by too few of the names: the terms name it
    assert shared_name(["哲学", "历史学", "艺术学"], cut) is None
    assert shared_name(["机械工程", "电气工程", "数学", "力学", "哲学", "物理学", "化学"],
                       cut) is None


def _medicine_and_economics(candidates: list[str]):
    """A site filed under 医学 and its disciplines, and two economics disciplines with no
    field (经济学 is missing); every paper offers `candidates` as its terms."""
    labels = ([["医学", "药学"]] * 6 + [["医学", "口腔医学"]] * 5 + [["理论经济学"]] * 5
              + [["应用经济学"]] * 5)
    n = len(labels)
    embeddings = normalize(np.array([[1.0, 0, 0]] * 11 + [[0, 1.0, 0.1]] * 5
                                    + [[0, 1.0, -0.1]] * 5))
    corpus = Corpus([f"a{i}" for i in range(n)], [f"论文{i}" for i in range(n)], labels,
                    [[] for _ in labels], [None] * n,
                    [SimpleNamespace(candidates=candidates) for _ in labels], embeddings,
                    np.zeros((n, 4)), np.ones(n), [[] for _ in labels], [])
    names = ["医学", "药学", "口腔医学", "理论经济学", "应用经济学"]
    model = SimpleNamespace(taxonomy=parse_taxonomy([{"name": x} for x in names]),
                            segmenter=Segmenter())
    centres = {"医学": unit(1, 0, 0), "药学": unit(1, 0.3, 0), "口腔医学": unit(1, -0.3, 0),
               "理论经济学": unit(0, 1, 0.1), "应用经济学": unit(0, 1, -0.1)}
    return corpus, model, centres


def test_a_proposed_parent_holds_its_childrens_articles_named_and_described_by_them():
    """经济学 is missing; its two disciplines' papers carry them alone. The parent's name
    is what their names share, its keywords are the children, not the words every paper
    uses."""
    corpus, model, centres = _medicine_and_economics(["研究", "分析"])
    new, = described_parents(corpus, model, centres, corpus.tags, 5, set())
    assert new.name == "经济学"
    assert new.parent_of == new.keywords == ["应用经济学", "理论经济学"]
    assert new.articles == [f"a{i}" for i in range(11, 21)]
    assert "应用经济学" in new.description and new.within is None
    # one typical title per child, the largest child first, not five of the largest child's
    assert new.examples == ["论文16", "论文11"]


def test_hundreds_of_orphans_are_grouped_in_about_a_second():
    """Each merge once rebuilt a dict of every pair (cubic): 500 orphans took ~10 s CPU,
    1,000 took 84 s. A list of that size is a real site's."""
    rng = np.random.default_rng(0)
    labels = [["医学", "药学"]] * 500 + [["医学"]] * 10
    prototypes = {"医学": unit(*[1.0] * 16), "药学": unit(*[1.0] * 8, *[0.0] * 8)}  # a fit of 0.71
    centres = rng.normal(size=(101, 16))
    for i in range(500):
        prototypes[f"c{i}"] = unit(*(centres[i // 5] + rng.normal(scale=0.5, size=16)))
        labels.append([f"c{i}"])
    start = time.process_time()
    groups = orphan_groups(labels, prototypes)
    assert time.process_time() - start < 4.0
    assert 20 <= len(groups) <= 100 and all(len(g) >= 2 for g in groups)


def test_a_parent_whose_terms_draft_no_name_is_named_by_its_childrens_names():
    """Its articles say nothing that sets them apart (no candidates): the shared word still
    names it, where before the parent was dropped with the terms' empty draft."""
    corpus, model, centres = _medicine_and_economics([])
    new, = described_parents(corpus, model, centres, corpus.tags, 5, set())
    assert new.name == "经济学" and new.parent_of == ["应用经济学", "理论经济学"]
    # its shared word proposed already, and no term: nothing to call it, no proposal
    assert described_parents(corpus, model, centres, corpus.tags, 5, {"经济学"}) == []
