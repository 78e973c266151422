"""hybrid.learn.tagger: vocabulary, neighbours and new keywords."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

import hybrid.learn.tag_rules as rules_module
import hybrid.learn.tag_select as select_module
import hybrid.learn.tagger as tagger_module
from hybrid import data
from hybrid.ingest.article import Article, parse_article
from hybrid.ingest.clean import clean
from hybrid.ingest.keys import label_key, near_duplicates
from hybrid.ingest.records import read_jsonl
from hybrid.learn.features import Features
from hybrid.learn.model import HybridModel
from hybrid.learn.tag_rules import Candidate, verdict
from hybrid.learn.tag_select import Chooser
from hybrid.learn.tagger import TagSuggester


def test_tags_reuse_site_vocabulary_and_find_new_keywords(sample_model):
    vocabulary = {label_key(t) for tags in sample_model.tagger.train_tags_ for t in tags}
    assert "crowdsec" not in vocabulary  # a keyword no training article was tagged with
    article = parse_article({
        "id": "t", "title": "nginx 安全加固：用 CrowdSec 拦截恶意 IP",
        "content": "关闭 server_tokens，做好权限设置，开启 HTTPS；用 CrowdSec 做入侵检测，"
                   "再配合 CDN 抵御攻击。CrowdSec 的社区规则要定期更新。"})
    pred = sample_model.predict([article], explain=True)[0]
    keys = [label_key(t) for t in pred.tags]
    assert len(keys) == 5 and len(set(keys)) == 5
    assert any(k in vocabulary for k in keys)
    assert "crowdsec" in keys


def test_alias_map_gives_a_canonical_spelling(tmp_path, config, sample_taxonomy,
                                              sample_articles):
    aliases = tmp_path / "aliases.json"
    aliases.write_text('{"K8s": "kubernetes", "k8s集群": "kubernetes"}', encoding="utf-8")
    model = HybridModel.train(sample_articles[:60], sample_taxonomy,
                              config.with_overrides(tag_aliases=str(aliases)))
    article = parse_article({"id": "k", "title": "K8s 集群升级记录",
                             "content": "K8s 升级前先备份 etcd，K8s 节点逐个 drain。"})
    tags = model.predict([article])[0].tags
    assert "kubernetes" in tags and not any(label_key(t) == "k8s" for t in tags)


def test_a_site_without_tags_still_gets_keywords(config, sample_taxonomy, sample_articles):

    untagged = [replace(a, tags=[]) for a in sample_articles[:40]]
    model = HybridModel.train(untagged, sample_taxonomy, config)
    article = parse_article({"id": "u", "title": "Redis 持久化配置",
                             "content": "Redis 的 RDB 快照与 AOF 日志，持久化策略的取舍。"})
    tags = model.predict([article])[0].tags
    assert "redis" in [label_key(t) for t in tags]


def test_with_too_few_tags_to_learn_from_the_untrained_scoring_ranks(run, tmp_path, config):
    """A bootstrap killed after its first labels: six labelled articles, one tag among them.
    No ranker can be learned from that; training still works, and tags come as zero-shot."""
    keep = {"s001", "s002", "s003", "s004", "s005", "s010"}
    rows = [{**r, "tags": ["docker"] if r["id"] == "s010" else []}
            for r in read_jsonl(data.path("sample_articles.jsonl")) if r["id"] in keep]
    (tmp_path / "few.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = run("train", "--data", str(tmp_path / "few.jsonl"), "--taxonomy",
                 str(data.path("sample_taxonomy.json")), "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    model = HybridModel.load(tmp_path / "m", config=config)
    assert model.tagger.ranker_ is None
    article = parse_article({"id": "u", "title": "Redis 持久化配置",
                             "content": "Redis 的 RDB 快照与 AOF 日志，持久化策略的取舍。"})
    assert "redis" in [label_key(t) for t in model.predict([article])[0].tags]


OWNER_ARTICLE = {
    "id": "owner", "title": "基于 Laravel11 InertiaJs Vue3 的轻应用：博客系统",
    "content": "最近我正在创建一个基于Laravel11 InertiaJs Vue3技术的轻应用,主要是一个博客系统。"
               "后端用 Laravel11 提供路由和数据，InertiaJs 把页面交给 Vue3 组件渲染，"
               "不用单独写接口。"
               "博客系统需要文章管理、标签和评论；内容生成部分打算接入大模型，先自动生成文章草稿。"
               "Vue3 的组合式写法做表单很顺手，InertiaJs 的表单助手也省了不少代码。"}


def test_the_owners_article_gets_its_own_words(sample_model):
    """The issue's example: version tokens whole, the stack and the product named (博客系统,
    or the site's own tag 博客 for it: the ranker's call, 0.19 against 0.17 on this model),
    and no neighbour vocabulary the text does not support (踩坑记录, "notes on pitfalls")."""
    pred = sample_model.predict([parse_article(OWNER_ARTICLE)])[0]
    keys = [label_key(t) for t in pred.tags]
    assert {"laravel11", "inertiajs", "vue3"} <= set(keys), pred.tags
    assert {"博客系统", "博客"} & set(keys), pred.tags
    assert "laravel" not in keys and "踩坑记录" not in keys


def test_one_tag_per_term_in_the_sites_spelling(sample_model):
    assert sample_model.tagger.display_[label_key("docker-compose")] == "docker-compose"
    article = parse_article({
        "id": "d", "title": "Docker Compose 编排本地开发环境",
        "content": "用 Docker Compose 一次启动 MySQL、Redis 和应用。Docker Compose 的配置里写好"
                   "服务，然后 docker compose up -d。Docker 镜像按需构建，"
                   "Compose 按依赖顺序启动。"})
    tags = sample_model.predict([article])[0].tags
    keys = [label_key(t) for t in tags]
    assert "docker-compose" in tags  # the site's spelling of the text's "Docker Compose"
    assert not {"docker", "compose", "docker compose"} & set(keys)
    assert not [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]
                if near_duplicates(a, b, sample_model.tagger.tag_count_)]


def test_names_stay_whole_and_their_words_are_no_tags(sample_model):
    article = parse_article({
        "id": "g", "title": "在 GitHub 上托管静态博客",
        "content": "把博客放在 GitHub Pages 上，GitHub Actions 每次推送后自动构建静态页面。"
                   "GitHub 的免费额度足够个人博客使用，GitHub Actions 的日志也能看到构建过程。"})
    keys = [label_key(t) for t in sample_model.predict([article])[0].tags]
    assert "github actions" in keys
    assert not {"pages", "actions"} & set(keys)


def test_no_years_generic_words_or_pieces_of_longer_words(sample_model):
    article = parse_article({
        "id": "y", "title": "2023 年终总结",
        "content": "2023 年我 create 了很多小项目，写了很多 code，也读了很多书。2023 年的目标是"
                   "多写博客，明年继续 create 更多东西。今年换了工作，学会了 Rust。"})
    keys = [label_key(t) for t in sample_model.predict([article])[0].tags]
    assert not {"2023", "create", "code"} & set(keys)


def test_a_neighbour_tag_is_never_a_piece_of_a_longer_word(sample_model, monkeypatch):
    """Every close neighbour carries `go`, but this text only says "golang" and "google"."""
    def article(i: int, tags: list[str]) -> Article:
        return parse_article({"id": f"g{i}", "title": f"golang 并发调度笔记 {i}", "tags": tags,
                              "content": "golang 的 goroutine 调度与 channel 通信，google 出品。"
                                         * (i + 1)})
    train = [article(i, ["go", "并发调度"]) for i in range(8)]
    tagger = TagSuggester(embedder=sample_model.featurizer.embedder).fit(
        sample_model.featurize([clean(a) for a in train]), [a.tags for a in train])
    X = sample_model.featurize([clean(article(9, []))])
    assert "go" not in [t.tag for t in tagger.suggest(X)[0]]
    # were "go" a word of the text, it would be
    monkeypatch.setattr(rules_module, "mentions", lambda text, key: True)
    assert "go" in [t.tag for t in tagger.suggest(X)[0]]


def test_of_two_near_duplicates_the_reader_keeps_the_right_one(sample_model):
    """Keys and shown spellings both count: the site's `webapi`, shown "Web API", and "API"
    are one tag. A phrase beats its word, the site's spelling beats another spelling of one
    English word, and of two Chinese terms one inside the other the ranker's first choice
    stays, however often the site uses the shorter one, unless the text says the shorter one
    only inside the longer. A site's phrase the text does not say loses to its word the text
    says (the book tag "CLR via C#" on an article about C#)."""
    from hybrid.learn.tag_select import _Shown

    tagger = sample_model.tagger.chooser()
    text = "web api 与 c# 的 api"
    web_api, api = _Shown("webapi", "web api", True), _Shown("api", "api", True)
    assert not tagger._prefer(api, web_api, text) and tagger._prefer(web_api, api, text)
    book, c_sharp = _Shown("clr via c#", "clr via c#", False), _Shown("c#", "c#", True)
    assert tagger._prefer(c_sharp, book, text) and not tagger._prefer(book, c_sharp, text)
    sample_model.tagger.tag_count_["沥青"] = 50
    try:
        short, long = _Shown("沥青", "沥青", True), _Shown("沥青混合料", "沥青混合料", True)
        text = "沥青混合料的配比：沥青用量与沥青混合料的空隙率"
        assert not tagger._prefer(short, long, text) and not tagger._prefer(long, short, text)
        text = "沥青混合料的配比与沥青混合料的空隙率"  # 沥青 is said only inside 沥青混合料
        assert tagger._prefer(long, short, text) and not tagger._prefer(short, long, text)
    finally:
        del sample_model.tagger.tag_count_["沥青"]


def test_a_neighbour_tag_the_text_does_not_support_needs_a_likely_score(sample_model,
                                                                          monkeypatch):
    """Every neighbour carries 自律 and the text never says it: shown only when the ranker
    finds it more likely right than not."""
    def article(i: int, tags: list[str]) -> Article:
        return parse_article({"id": f"s{i}", "title": f"关于写作习惯的一点体会 {i}", "tags": tags,
                              "content": "每天早起写五百字，坚持了一年，记录下来。" * (i + 1)})
    train = [article(i, ["自律", "写作"]) for i in range(8)]
    tagger = TagSuggester(embedder=sample_model.featurizer.embedder).fit(
        sample_model.featurize([clean(a) for a in train]), [a.tags for a in train])
    X = sample_model.featurize([clean(article(9, []))])
    monkeypatch.setattr(tagger_module, "_AGREEING_NEIGHBOURS", 99)  # no close agreement
    monkeypatch.setattr(select_module, "_LIKELY", 1.01)
    assert "自律" not in [t.tag for t in tagger.suggest(X)[0]]
    monkeypatch.setattr(select_module, "_LIKELY", 0.0)
    assert "自律" in [t.tag for t in tagger.suggest(X)[0]]


def test_everyday_words_and_genre_words_are_no_tags(sample_model):
    """平台, 问题 and `network` are said again and again, and no reader clicks them; 研究进展
    says what kind of text it is. The article's subjects remain."""
    article = parse_article({
        "id": "e", "title": "etcd 集群运维问题研究进展",
        "content": "etcd 是分布式键值存储。平台上的问题很多，问题一个接一个：network 抖动、"
                   "network 分区。etcd 的 raft 日志、etcd 的快照、平台的问题与 network 的问题。"
                   * 3})
    pred = sample_model.predict([article], explain=True)[0]
    keys = {label_key(t) for t in pred.tags}
    assert "etcd" in keys
    assert not {"平台", "问题", "network", "研究进展"} & keys
    reasons = {d["tag"]: d["reason"] for d in pred.dropped_tags}
    assert reasons.get("平台") == "an everyday word"


def test_genre_words_are_no_tags_even_where_the_site_tags_with_them():
    """A site whose authors tag papers 综述 and 研究现状 still gets no such tag: readers
    reject them on the authors' own lists. 中国, the setting of most Chinese texts, is no tag
    even where the title names it (readers, rounds 3-7: 51 struck out on every list, none
    kept); 北京, rarer, stays a name."""
    def doc(title: str) -> Features:
        body = "城镇化与慢性病的关系。中国的城镇化，北京的慢性病，中国居民健康。"
        return Features(embedding=np.zeros(1), words=[], head_words=[], candidates=[],
                        title=title, lexical=body, text=label_key(f"{title}\n{body}"),
                        heads=label_key(title), names={"中国", "北京"})
    paper = doc("城镇化与慢性病关系的研究现状综述")
    for word in ("综述", "研究现状"):
        assert verdict(Candidate(word, word, count=2), 50, True, paper) == \
            "says what kind of text it is, not what about"
    assert verdict(Candidate("中国", "中国", count=2), 0, False, paper) == "an everyday word"
    assert verdict(Candidate("北京", "北京", count=1), 0, False, paper) is None
    assert verdict(Candidate("中国", "中国", count=2), 3, True, doc("中国的城镇化")) == \
        "an everyday word"


def test_an_action_is_no_tag_even_where_the_title_says_it_and_the_site_tags_it():
    """csl's authors tag 合成 on papers titled "X的合成"; readers strike it out. An article
    about 加班 names it and says it again and again: its subject."""
    body = "以丙二腈为原料合成奥氮平,总收率29%。"
    paper = Features(embedding=np.zeros(1), words=[], head_words=[], candidates=[],
                     title="奥氮平的合成", lexical=body, text=label_key(f"奥氮平的合成\n{body}"),
                     heads=label_key("奥氮平的合成"), actions={"合成"})
    assert verdict(Candidate("合成", "合成", count=2), 50, True, paper) == \
        "names an action, not a subject"
    assert verdict(Candidate("奥氮平", "奥氮平", count=2), 0, False, paper) is None
    overtime = replace(paper, title="谈谈加班", heads=label_key("谈谈加班"), actions={"加班"})
    assert verdict(Candidate("加班", "加班", count=12), 3, False, overtime) is None


def test_explain_says_why_each_tag_was_kept_and_why_strong_candidates_were_not(sample_model):
    article = parse_article({
        "id": "x", "title": "在 k8s 中部署 Prometheus 监控",
        "content": "用 Helm 在 Kubernetes 集群中部署 Prometheus 和 Grafana。Prometheus 抓取指标，"
                   "Grafana 展示。配置 ServiceMonitor 让 Prometheus 发现服务，告警规则写在 "
                   "PrometheusRule 里。"})
    pred = sample_model.predict([article], explain=True)[0]
    assert [k["tag"] for k in pred.keyword_scores] == pred.tags
    assert all(k["reason"] for k in pred.keyword_scores)
    named = {k["tag"]: k["reason"] for k in pred.keyword_scores}
    assert "named in the title" in named["Prometheus"]
    dropped = {d["tag"]: d["reason"] for d in pred.dropped_tags}
    assert dropped["ServiceMonitor"] == "looks like an identifier"
    assert "Helm" not in dropped or "everyday" not in dropped["Helm"]  # a name, not a word


def test_one_spelling_per_concept_across_the_site(sample_model):
    """The site's articles write `Prometheus`; one that writes `prometheus` gets the site's
    spelling, so both land on one tag page."""
    def article(i: int, name: str) -> Article:
        return parse_article({"id": f"p{i}", "title": f"{name} 监控笔记 {i}", "tags": ["监控"],
                              "content": f"{name} 抓取指标，{name} 告警。" * 3})
    train = [article(i, "Prometheus") for i in range(6)]
    tagger = TagSuggester(embedder=sample_model.featurizer.embedder).fit(
        sample_model.featurize([clean(a) for a in train]), [a.tags for a in train])
    X = sample_model.featurize([clean(article(9, "prometheus"))])
    assert "Prometheus" in [t.tag for t in tagger.suggest(X)[0]]


def test_the_site_tag_model_reads_the_sites_own_tags_off_the_embedding():
    import numpy as np

    from hybrid.learn.site_tags import SiteTagModel

    rng = np.random.default_rng(0)
    E = rng.normal(size=(60, 8)).astype(np.float32)
    tags = [["a"] if e[0] > 0 else ["b"] for e in E]
    model = SiteTagModel(min_uses=3, alpha=1.0).fit(E, tags + [["rare"]] * 0)
    assert model.vocabulary_ == ["a", "b"]
    scores = model.decision_function(E)
    right = [model.vocabulary_[j] for j in scores.argmax(axis=1)]
    assert np.mean([r == t[0] for r, t in zip(right, tags, strict=True)]) > 0.9
    oof = model.out_of_fold(E, tags, np.arange(10), np.arange(60))
    assert oof.shape == (10, 2)


def test_a_site_tag_its_authors_say_where_they_use_it_needs_the_text_to_say_it():
    """The site's six `docker` articles all say docker; close neighbours carry it to an
    article that never does, and the ranker gives it little: not shown. `weeklysharing`,
    which the site puts on posts that never say it, may be carried so."""
    chooser = Chooser({}, {}, {"docker": 6, "weeklysharing": 40}, {"docker": 6},
                      base_rate=0.1, learned=True, n_tags=5, vote=0, explained=8)
    for key in ("docker", "weeklysharing"):
        c = Candidate(key, key, 0, -1)
        c.supported = True  # close neighbours agree on it
        why = chooser._skip(c, 0.05, 1, key)
        assert (why is None) == (key == "weeklysharing"), key


def test_the_order_of_the_training_articles_does_not_move_any_tag(sample_model,
                                                                 sample_articles):
    """The ranker's trees stop on held-out articles chosen by a key of each article, and the
    site tag model's folds too: before, scikit-learn's random tenth of the rows by position
    decided both, and reordering the same articles reshuffled the 4th and 5th tags."""
    texts = [clean(a) for a in sample_articles]
    X = sample_model.featurize(texts)
    tags = [a.tags for a in sample_articles]
    order = np.random.default_rng(0).permutation(len(X))

    def fitted(idx):
        return TagSuggester(embedder=sample_model.featurizer.embedder).fit(
            [X[i] for i in idx], [tags[i] for i in idx])

    first, second = fitted(np.arange(len(X))), fitted(order)
    assert first.ranker_ is not None
    for a, b in zip(first.suggest(X), second.suggest(X), strict=True):
        assert [t.tag for t in a] == [t.tag for t in b]
        assert np.allclose([t.score for t in a], [t.score for t in b], atol=1e-6)


def test_the_trees_stop_on_whole_articles_that_stay_put_when_others_come():
    """Three articles more move at most one of the others in or out of the held-out tenth
    (the tenth grows by one); a split of rows by position moved most."""
    from hybrid.learn.tag_ranker import validation_rows

    groups = np.repeat(np.arange(0, 400, 7), 5)  # 58 articles of 5 candidates each
    labels = np.tile([1, 0, 0, 0, 0], len(groups) // 5)
    held = validation_rows(groups, labels)
    assert 0.05 < held.mean() <= 0.1
    assert all(len(set(held[groups == g])) == 1 for g in np.unique(groups))  # whole articles
    more = np.concatenate([np.repeat([3, 150, 401], 5), groups])
    moved = validation_rows(more, np.tile([1, 0, 0, 0, 0], len(more) // 5))[15:] != held
    assert len(np.unique(groups[moved])) <= 1


def test_the_held_out_articles_hold_tags_and_non_tags_so_the_trees_stop_on_a_ranking():
    """A tenth of the articles whose candidates are all wrong (or all right) measures nothing
    about ranking; scikit-learn's own split is stratified for this. More articles, by key,
    are held out until both kinds are there."""
    from hybrid.learn.tag_ranker import validation_rows

    groups = np.repeat(np.arange(30), 4)  # 30 articles; the tenth is the 3 lowest keys
    labels = np.zeros(len(groups), dtype=int)
    labels[groups >= 3] = np.tile([1, 0, 0, 0], 27)  # the 3 lowest have no tag among theirs
    held = validation_rows(groups, labels)
    assert set(labels[held]) == {0, 1}
    assert set(groups[held]) == {0, 1, 2, 3}  # whole articles, the next by key
    assert validation_rows(groups, np.tile([1, 0, 0, 0], 30)).sum() == 12  # else a tenth
