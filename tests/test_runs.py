"""hybrid.mongo.runs: the partition checkpoints of a run report (the selection and the rest of
the report are tested through the nightly job, in test_nightly.py)."""

from __future__ import annotations

from hybrid.mongo.runs import RunReport, Selection


def report() -> RunReport:
    return RunReport("articles", "articles", "m", "f", Selection())


def test_the_checkpoint_moves_only_over_the_done_partitions_at_the_front():
    r = report()
    first, second, third = r.hand_out(None, "a10"), r.hand_out("a10", "a20"), r.hand_out(
        "a20", None)
    r.finish(second, "a20", complete=True)
    assert r.checkpoint is None and [p["done"] for p in r.partitions] == [False, True, False]
    r.finish(first, "a10", complete=True)
    assert r.checkpoint == "a20" and r.partitions == [third]
    r.finish(third, "a27", complete=True)  # the open end: done up to what it read
    assert r.checkpoint == "a27" and r.partitions == []
    assert r.document()["partitions"] == []


def test_what_a_limit_left_of_a_partition_stays_to_do():
    r = report()
    r.checkpoint = "a00"
    first = r.hand_out("a00", "a10")
    r.finish(first, "a04", complete=False)
    assert r.checkpoint == "a04"
    assert r.partitions == [{"after": "a04", "until": "a10", "done": False}]


def test_an_empty_open_end_keeps_the_checkpoint():
    r = report()
    r.checkpoint = "a10"
    r.finish(r.hand_out("a10", None), None, complete=True)
    assert r.checkpoint == "a10" and r.partitions == []


def test_a_partition_report_counts_into_the_run_and_sees_the_run_as_resumed():
    r = report()
    part = r.part()
    assert part.id == r.id and part.resumes == [r.id] and part.counts["tagged"] == 0
    part.counts["tagged"] += 3
    part.categories.update(["数据库", "数据库"])
    part.fail("x", "broken")
    r.add(part)
    r.add(r.part())
    assert (r.counts["tagged"], r.counts["failed"], r.categories["数据库"]) == (3, 1, 2)
    assert r.errors == [{"_id": "x", "error": "broken"}] and r.resumes == []


def test_an_article_a_teacher_labelled_is_tagged_until_it_shows_the_teachers_labels():
    """Even when the model already guessed the teacher's categories: the teacher's tags and
    `source: "llm"` are what the article must show (docs/day-one.md)."""
    teacher = {"categories": ["数据库"], "tags": ["MySQL"], "content_hash": "h"}
    guessed = {"source": "model", "content_hash": "h", "teacher": teacher}
    assert Selection().wants(guessed, "h", ["数据库"]) == "tag"
    assert Selection().wants({**guessed, "source": "llm"}, "h", ["数据库"]) == "unchanged"
    assert Selection().wants({**guessed, "source": "llm"}, "h", ["前端开发"]) == "tag"
    assert Selection().wants(guessed, "changed", ["数据库"]) == "tag"  # the text changed
