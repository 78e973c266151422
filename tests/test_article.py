"""hybrid.ingest.article: raw records become validated articles, or errors naming the field."""

from __future__ import annotations

import pytest

from hybrid.config import Config
from hybrid.ingest.article import ArticleError, parse_article
from hybrid.ingest.clean import clean


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


def test_label_fields_are_checked_for_training_but_ignored_when_predicting():
    raw = {"id": "l", "title": "t", "content": "c", "tags": 5, "categories": {"x": 1}}
    with pytest.raises(ArticleError, match="categories"):
        parse_article(raw)
    article = parse_article(raw, with_labels=False)
    assert article.tags == [] and article.categories == []


def test_an_article_error_survives_pickling_as_it_crosses_to_a_worker():
    import pickle

    error = ArticleError("line 4", "<json>", "Expecting value")
    again = pickle.loads(pickle.dumps(error))
    assert (again.article_id, again.field, str(again)) == ("line 4", "<json>", str(error))


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], "x" * 1000, 10**40])
def test_ids_of_any_type_are_named_briefly_in_errors(value):
    from hybrid.ingest.ids import SHOWN_CHARS

    with pytest.raises(ArticleError) as caught:
        parse_article({"id": value, "title": 5})
    assert isinstance(caught.value.article_id, str)
    assert len(str(caught.value)) < SHOWN_CHARS + 60


def test_a_long_id_is_whole_and_a_mongodb_id_keeps_its_type():
    """The id is the article's identity (the ledger's, the review file's key): never cut."""
    from bson import Decimal128, ObjectId

    from hybrid.ingest.article import article_id_of
    from hybrid.ingest.ids import id_value

    long = "x" * 255
    assert article_id_of({"id": long}) == article_id_of({"_id": long}) == long
    for value in (1, "1", ObjectId(), {"n": 1}, Decimal128("1.5"), long, '"quoted"'):
        key = article_id_of({"_id": value})
        assert id_value(key) == value and type(id_value(key)) is type(value)
    assert article_id_of({"_id": 1}) != article_id_of({"_id": "1"})
