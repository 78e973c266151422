"""The teacher check's verdicts: an audit decides on its point estimates, the estimate
without gold labels only beyond its interval or its negative controls' bound, and says when
it cannot tell."""

import numpy as np

from hybrid.labels.controls import control_lists, offered
from hybrid.labels.teacher_check import TeacherEstimate, by_audit
from hybrid.llm.check.measure import Interval
from hybrid.taxonomy import parse_taxonomy


def test_an_audit_stops_a_teacher_right_less_often_than_the_zero_shot_model():
    """5 of 20 against 9 of 20 on the same articles (the 0.5B on csl, about): worse, though
    the teacher's Wilson interval still reaches the zero-shot model's share."""
    estimate = by_audit([True] * 5 + [False] * 15, [True] * 9 + [False] * 11)
    assert estimate.teacher.high > estimate.zero_shot.value
    assert estimate.below and "the teacher is worse" in estimate.text()


def test_an_audit_lets_a_teacher_as_good_as_the_zero_shot_model_go_on():
    estimate = by_audit([True] * 9 + [False] * 11, [False] * 11 + [True] * 9)
    assert not estimate.below and not estimate.undecided
    assert "the teacher is not worse" in estimate.text()


def test_an_estimate_without_gold_labels_says_when_it_cannot_tell():
    """csl's 0.5B: 0.430 (0.145-0.685) against 0.273. Not stopped, and the text points to
    the audit instead of calling the teacher good."""
    estimate = TeacherEstimate("agreement", 40, Interval(0.430, 0.145, 0.685),
                               Interval(0.273, 0.264, 0.281))
    assert not estimate.below and estimate.undecided
    assert "cannot tell" in estimate.text() and "--audit FILE" in estimate.text()
    clear = TeacherEstimate("agreement", 40, Interval(0.9, 0.6, 1.0),
                            Interval(0.5, 0.48, 0.52))
    assert not clear.undecided and "the teacher is not worse" in clear.text()
    worse = TeacherEstimate("agreement", 40, Interval(0.1, 0.0, 0.3),
                            Interval(0.5, 0.48, 0.52))
    assert worse.below and not worse.undecided


def test_negative_controls_stop_a_teacher_that_agreement_cannot_tell():
    """csl's 0.5B: agreement 0.430 (0.145-0.685) holds the zero-shot model's 0.273, but it
    picked a category from every list of unlikely ones it was given: its accuracy is at most
    0 of 40 (0.000-0.088), below the zero-shot model's. A teacher that answers none to most
    controls is bounded above the zero-shot model and agreement still cannot tell."""
    agreement = Interval(0.430, 0.145, 0.685)
    zero = Interval(0.273, 0.264, 0.281)
    picks = TeacherEstimate("agreement", 40, agreement, zero, Interval(0.0, 0.0, 0.088))
    assert picks.below and not picks.undecided and picks.upper is picks.controls
    assert "negative controls" in picks.text() and "the teacher is worse" in picks.text()
    careful = TeacherEstimate("agreement", 40, agreement, zero, Interval(0.75, 0.6, 0.86))
    assert not careful.below and careful.undecided and careful.upper is careful.teacher


def test_a_control_offers_the_categories_the_zero_shot_model_finds_least_likely():
    taxonomy = parse_taxonomy([{"name": f"c{i}"} for i in range(20)])
    proba = np.tile(np.linspace(1.0, 0.05, 20), (2, 1))
    proba[1, [3, 7]] = 0.0
    lists = control_lists(proba / proba.sum(axis=1, keepdims=True), taxonomy)
    assert [t.names for t in lists] == [["c15", "c16", "c17", "c18", "c19"],
                                        ["c3", "c7", "c17", "c18", "c19"]]
    small = parse_taxonomy([{"name": f"c{i}"} for i in range(5)])
    assert control_lists(np.full((1, 5), 0.2), small) == [] and offered(small) == 0


def test_a_control_answered_off_its_list_is_a_pick_and_a_reply_without_categories_is_none_of_both(
        config, sample_taxonomy, sample_articles):
    """Validation drops a category the control did not offer, which left an empty list: a
    teacher that ignores the list (a server without the schema) looked as careful as one that
    says none. A reply with no `categories` at all answers nothing."""
    from types import SimpleNamespace

    from hybrid.ingest.clean import clean
    from hybrid.labels.teacher import LLMTeacher

    article = sample_articles[0]
    offered_list = parse_taxonomy({"categories": [c.name for c in sample_taxonomy.categories[:2]]},
                                  "control")
    outside = sample_taxonomy.categories[-1].name
    teacher = LLMTeacher(config, sample_taxonomy)
    got = []
    for data in ({"categories": [outside]}, {"categories": []}, {"tags": ["x"]}):
        reply = SimpleNamespace(data=data)
        teacher._asker = SimpleNamespace(ask=lambda *a, r=reply: SimpleNamespace(reply=r))
        got.append(teacher.control(article, clean(article), offered_list))
    assert got == [[outside], [], "error"]
