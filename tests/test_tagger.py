"""hybrid.learn.tagger: vocabulary, neighbours and new keywords."""

from __future__ import annotations

from dataclasses import replace

from hybrid.ingest.article import parse_article
from hybrid.ingest.keys import label_key
from hybrid.learn.model import HybridModel


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
