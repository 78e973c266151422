"""hybrid.ingest.keys: one identity for labels."""

from __future__ import annotations

from hybrid.ingest.keys import (
    label_key,
    mentions,
    near_duplicates,
    nfkc,
    only_inside_words,
    plain_tag,
    plain_tags,
    text_key,
)


def test_label_key_folds_case_and_width():
    assert label_key("Ｋ８ｓ") == label_key("k8s") == "k8s"
    assert label_key("  Spring   Boot ") == "spring boot"


def test_a_trademark_sign_is_no_part_of_a_label_or_of_the_text_that_says_it():
    """An author's or a site's `Core™` is the tag Core (NFKC alone gives `CoreTM`), and a
    text that says "Intel® Core™" says it."""
    assert plain_tag("Core™") == "Core" and plain_tag("Java®") == "Java"
    assert plain_tags(["Core™", "core"]) == (["Core"], [])
    assert mentions(text_key("用 Intel® Core™ 处理器"), label_key("Core™"))


def test_near_duplicates_are_what_a_reader_sees_as_one_tag():
    uses = {"docker": 5, "docker compose": 3}
    for a, b in [("event", "events"), ("capability", "capabilities"), ("k8s", "kubernetes"),
                 ("kube", "kubernetes"), ("tensor", "tensorflow"), ("web", "web components"),
                 ("容器", "容器编排")]:
        assert near_duplicates(a, b, uses) and near_duplicates(b, a, uses)
    assert not near_duplicates("java", "javascript", {"java": 9, "javascript": 9})  # both tags
    assert not near_duplicates("go", "google", {})  # too short to be a prefix of anything
    assert not near_duplicates("redis", "mysql", uses)


def test_versions_of_one_product_are_one_tag_unless_the_site_tags_both():
    """`PCIE6`, `PCIE2` and `PCIE4` on one article are one tag page a reader wants; a
    site that tags `dotnet4` and `dotnet3.0` apart keeps them apart. `x86` and `x64`
    share no name."""
    for a, b in [("pcie6", "pcie4"), ("vue 3", "vue2"), ("ios 17.2", "ios16")]:
        assert near_duplicates(a, b, {}) and near_duplicates(b, a, {})
    assert not near_duplicates("dotnet4", "dotnet3.0", {"dotnet4": 8, "dotnet3.0": 7})
    assert not near_duplicates("x86", "x64", {})


def test_spellings_apart_only_by_spaces_hyphens_or_underscores_are_one_tag():
    """`tableview` and "Table View" in one list are one concept shown twice; the
    selection then keeps the site's spelling (`Chooser._prefer`)."""
    for a, b in [("tableview", "table view"), ("table-view", "table_view"),
                 ("tableviews", "table view"), ("vue 组件", "vue组件")]:
        assert near_duplicates(a, b, {}) and near_duplicates(b, a, {})
    assert not near_duplicates("data view", "dataflow", {})
    assert not near_duplicates("c-sharp", "csharpener", {"c-sharp": 3, "csharpener": 3})


def test_mentions_whole_words_and_plurals_only():
    text = label_key("We run Elasticsearch and two CPUs; see github for code")
    assert mentions(text, "cpu") and mentions(text, "elasticsearch")
    assert not mentions(text, "elastic") and not mentions(text, "git")
    assert only_inside_words(text, "elastic") and only_inside_words(text, "git")
    assert not only_inside_words(text, "cpu") and not only_inside_words(text, "kafka")
    assert mentions(label_key("用容器编排部署"), "容器")  # Chinese has no word boundaries
    assert only_inside_words("built with libc++ and f#", "libc")
    assert not mentions("built with libc++ and f#", "f")
    assert mentions("built with libc++ and f#", "libc++") and mentions("###editme###", "editme")


def test_a_tag_is_mentioned_in_another_spelling_of_its_letters():
    text = "we moved the asp.net site from sql server to postgres"
    assert mentions(text, "aspnet") and mentions(text, "sqlserver")
    assert mentions("our aspnet site", "asp.net")
    assert not mentions("a i", "ai")  # too short to respell
    assert not mentions(text, "aspnetcore") and not mentions(text, "sqlserve")


def test_a_plain_tag_is_no_script_link_or_spreadsheet_formula():
    for bad in ("<script>alert(1)</script>", "javascript:alert(1)", "JavaScript:void(0)",
                "data:text/html,x", "=cmd|calc", "+cmd|calc", "-2+3", "@SUM(1)", "a\u202eb"):
        assert plain_tag(bad) is None, bad
    for good in ("JavaScript", "C++", "C#", ".NET", "std::vector", "方法:数值", "HTTP/2",
                 "Spring Boot", "docker-compose", "Ｋ８ｓ"):
        assert plain_tag(good), good
    assert plain_tags(["Redis", "=1+1", " redis ", "缓存", "REDIS"]) == (["Redis", "缓存"],
                                                                          ["=1+1"])


def test_whole_words_are_found_and_counted_as_the_pattern_they_replace_finds_them():
    """`mentions` and `times_said` scan with `str.find`; the regex they replaced, compiled
    per key, is the reference on random texts built from the characters that matter."""
    import random
    import re

    from hybrid.ingest.keys import _WORD_END, times_said

    rng = random.Random(0)
    alphabet = ["cpu", "s", "es", "e", "a", "1", " ", "+", "#", "-", ".", "容", "A"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        key = rng.choice(["cpu", "cpus", "c", "a", "s", "e", "cpu#", "cpu+"])
        pattern = re.compile(rf"(?<![a-z0-9]){re.escape(key)}(?:e?s)?{_WORD_END}")
        assert times_said(text, key) == len(pattern.findall(text)), (text, key)
        if len(key) < 4:  # longer keys may also be said respelt: more than the pattern
            assert mentions(text, key) == bool(pattern.search(text)), (text, key)
    assert times_said("cpu", "") == 0 and not mentions("cpu", "")


def test_a_text_with_nothing_to_fold_is_not_copied():
    """`nfkc` reads every article's text several times: a long text with no trademark sign
    and nothing NFKC changes comes back as it is (`str.translate` copied it, ~80 ns a
    character, a tenth of cleaning on long posts)."""
    text = "用 Swift 写一个 iOS 应用。" * 2000
    assert nfkc(text) is text
    assert nfkc("Intel® Core™ ＡＰＩ") == "Intel Core API"


def test_a_tag_made_plain_once_is_remembered():
    """The tagger makes ~20 tags an article plain, and a site's tags recur."""
    plain_tag.cache_clear()
    assert plain_tag("Redis") == plain_tag("Redis") == "Redis"
    assert plain_tag.cache_info().hits == 1
