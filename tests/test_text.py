import pytest

from hybrid.article import ArticleError, parse_article
from hybrid.config import Config
from hybrid.text import clean


def article(**fields):
    return parse_article({"id": "a1", "title": "标题", **fields})


def test_html_and_markdown_become_plain_text():
    text = clean(article(content=(
        "# 部署 nginx\n\n<script>alert('x')</script><style>p{}</style><nav>首页 菜单</nav>"
        "<p>配置 &amp; 优化 &lt;server&gt; 块</p>\n\n- 列表项 `inline`\n")))
    assert "alert" not in text.body and "p{}" not in text.body and "菜单" not in text.body
    assert "配置 & 优化 <server> 块" in text.body
    assert "部署 nginx" in text.body and "inline" in text.body


def test_full_width_forms_and_whitespace_are_normalised():
    text = clean(article(content="ＡＰＩ　网关，支持\t\tＨＴＴＰ２：\n\n\n好"))
    assert text.body == "API 网关,支持 HTTP2:\n好"


def test_code_blocks_are_kept_apart_and_bounded():
    code = "\n".join(f"print({i})" for i in range(500))
    text = clean(article(content=f"一段很短的说明。\n\n```python\n{code}\n```\n"))
    assert "print(1)" in text.code and "print" not in text.body
    lexical = text.lexical_text()
    prose = len(lexical) - len(lexical.split("\n", 3)[-1])
    assert len(lexical) - prose <= 0.2 * prose + 5


def test_embedding_input_puts_title_first_and_respects_budget():
    text = clean(article(description="摘要", content="正文" * 1000))
    snippet = text.embedding_input(50)
    assert snippet.startswith("标题 摘要") and len(snippet) <= 50


@pytest.mark.parametrize("value, kind", [(42, "int"), (["a", "b"], "list"), ({"x": 1}, "dict")])
def test_wrong_types_name_the_article_and_field(value, kind):
    with pytest.raises(ArticleError) as err:
        parse_article({"id": "doc-7", "title": "t", "content": value})
    assert err.value.article_id == "doc-7" and err.value.field == "content"
    assert "doc-7" in str(err.value) and "content" in str(err.value) and kind in str(err.value)


def test_missing_and_none_fields_are_flagged_not_fatal():
    a = parse_article({"id": 3, "title": "只有标题", "description": None})
    assert a.id == "3" and a.content == "" and {"missing:description", "missing:content"} <= set(
        a.flags)


def test_article_without_any_text_is_an_error():
    with pytest.raises(ArticleError, match="no text"):
        parse_article({"id": "e", "title": "  ", "content": None})


def test_non_object_record_is_an_error():
    with pytest.raises(ArticleError, match="expected an object"):
        parse_article(["not", "a", "dict"])


def test_invalid_surrogates_are_replaced_and_flagged():
    a = parse_article({"id": "s", "title": "坏\ud800字符", "content": "正文"})
    assert "invalid_unicode:title" in a.flags
    a.title.encode("utf-8")


def test_five_megabyte_article_is_truncated_and_flagged():
    body = "<div>" + "很长的段落内容。" * 700_000 + "</div>"
    a = parse_article({"id": "big", "title": "t", "content": body}, Config())
    assert "truncated:content" in a.flags
    text = clean(a)
    assert 0 < len(text.body) <= Config().max_field_chars


def test_broken_html_is_best_effort():
    text = clean(article(content="<div><p>未闭合 <b>加粗 <i>斜体</div></span> 结尾 <a href='x'"))
    assert "未闭合" in text.body and "结尾" in text.body


def test_label_fields_are_checked_for_training_but_ignored_when_predicting():
    raw = {"id": "l", "title": "t", "content": "c", "tags": 5, "categories": {"x": 1}}
    with pytest.raises(ArticleError, match="categories"):
        parse_article(raw)
    article = parse_article(raw, with_labels=False)
    assert article.tags == [] and article.categories == []


def test_markdown_that_crashes_the_fast_parser_still_renders():
    # markdown-it-pyrs panics (a BaseException) on this; a batch must not die of it
    text = clean(parse_article({"id": "m", "title": "t",
                                "content": "正文 [`]\n```\ncode\n```"}))
    assert "正文" in text.body
