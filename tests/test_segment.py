"""hybrid.ingest.segment: words and tag candidates."""

from __future__ import annotations

from hybrid.ingest.segment import Segmenter


def test_english_and_version_tokens_stay_whole():
    words = Segmenter().words("升级到 vue3 和 laravel11，部署在 k8s 上，运行 node.js 与 python3")
    for token in ("vue3", "laravel11", "k8s", "node.js", "python3"):
        assert token in words


def test_bundled_tech_terms_and_stop_words():
    seg = Segmenter()
    words = seg.words("我们可以使用负载均衡和反向代理来进行入侵检测")
    assert {"负载均衡", "反向代理", "入侵检测"} <= set(words)
    assert "我们" not in words and "可以" not in words and "进行" not in words


def test_user_dictionary_and_stop_words_extend_the_bundled_ones(tmp_path):
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("灰度蓝绿 100 n\n", encoding="utf-8")
    stop = tmp_path / "stop.txt"
    stop.write_text("集群\n", encoding="utf-8")
    seg = Segmenter(str(user_dict), str(stop))
    cands = seg.candidates("我们用灰度蓝绿发布新的集群版本").tokens
    assert "灰度蓝绿" in cands and "集群" not in cands


def test_candidates_filter_parts_of_speech_and_build_compounds():
    cands, *_ = Segmenter().candidates("我们很快地完成了容器编排以及服务网格的迁移 2024")
    assert "容器编排" in cands
    assert "很快" not in cands and "完成" not in cands and "2024" not in cands


def test_repeated_phrases_become_candidates():
    seg = Segmenter()
    once = seg.candidates("基于强化学习的动态库存调度。").tokens
    twice, phrases, *_ = seg.candidates(
        "基于强化学习的动态库存调度。实验表明动态库存调度的成本下降。")
    assert "动态库存调度" not in once and "库存调度" in once  # an adjacent-noun compound
    assert twice.count("动态库存调度") == 2  # counts stay frequencies
    assert "动态库存调度" in phrases and "成本" not in phrases
    # the text never says 库存调度 apart from 动态库存调度: a piece of it is no tag
    assert "库存调度" not in twice and "调度" not in twice


def test_site_vocabulary_keeps_multi_word_tags_whole():
    assert "权限设置" in Segmenter(vocabulary=["权限设置"]).candidates("关于权限设置的建议")[0]


def test_segmenter_pickles_without_its_dictionary():
    import pickle

    seg = Segmenter(vocabulary=["灰度发布"])
    seg.words("灰度发布")
    clone = pickle.loads(pickle.dumps(seg))
    assert "灰度发布" in clone.words("灰度发布流程")


def test_latin_words_jieba_splits_are_joined_again():
    seg = Segmenter()
    text = "在 virtualbox 里装 Laravel11，用 Elasticsearch 做检索"
    words, candidates = seg.words(text), seg.candidates(text)[0]
    assert {"virtualbox", "laravel11", "elasticsearch"} <= set(words)  # words are lower case
    assert {"virtualbox", "Laravel11", "Elasticsearch"} <= set(candidates)
    assert not {"virtual", "elastic", "laravel"} & {w.lower() for w in words + candidates}


def test_a_symbol_ending_a_name_stays_on_it():
    seg = Segmenter(vocabulary=["libc"])
    text = "用 libc++ 和 F# 写，再用 notepad++ 改 index.html#intro"
    candidates = seg.candidates(text)[0]
    assert {"libc++", "F#", "notepad++"} <= set(candidates)
    assert not {"libc", "notepad", "index.html#"} & set(candidates)


def test_addresses_and_ids_are_no_candidates():
    seg = Segmenter()
    text = ("节目在 https://www.xiaoyuzhoufm.com/episode/67c3d80fb0167b8db9e3ec0f ，文档见 "
            "docs.docker.com 和 github.com/jiegec；ASP.NET 与 CXL.io 都是名字")
    candidates = set(seg.candidates(text)[0])
    assert {"ASP.NET", "CXL.io", "jiegec"} <= candidates
    assert not {"www.xiaoyuzhoufm.com", "67c3d80fb0167b8db9e3ec0f", "docs.docker.com",
                "github.com"} & candidates


def test_english_terms_stay_whole():
    seg = Segmenter()
    cands, phrases, *_ = seg.candidates(
        "Web Components 是浏览器原生的组件模型。用 web components 写的组件在任何框架里都能用，"
        "Spring Boot 项目里也能引入。")
    assert {"Web Components", "Spring Boot"} <= phrases  # repeated, or written as a name
    assert cands.count("Web Components") == 2  # one term, whatever the case
    assert not {"Components", "components", "Boot"} & set(cands)  # never said alone
    phrases = seg.candidates("The Best Way To Learn Rust Is To Write It").phrases
    assert not phrases  # an English sentence is no name


def test_notation_in_a_formula_is_no_phrase():
    """`t-3 log` of "5 t-3 log(e^t)", said twice, is a piece of a formula, not a term."""
    cands = Segmenter().candidates("答案 f(t) = 5 t-3 log(e^t)，导数 d(5 t-3 log(e^t))/dt").tokens
    assert not any("t-3" in c for c in cands)
    cands = Segmenter().candidates("run -e MYSQL_HOST=db 与 -e MYSQL_PORT=3306 的区别").tokens
    assert not any(c.startswith("e ") for c in cands)


def test_a_latin_name_said_beside_chinese_is_no_piece_of_its_phrases():
    """Chinese writes Latin names without spaces: a post that says 用Markdown格式 and
    Markdown编辑工具 says Markdown, and readers missed it as a tag."""
    text = "WordPress使用Markdown\n用Markdown格式写博客，Markdown格式很好，Markdown编辑工具多"
    assert "Markdown" in Segmenter().candidates(text).tokens
