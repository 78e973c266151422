"""The teacher check's verdicts: an audit decides on its point estimates, the estimate
without gold labels only beyond its interval, and says when it cannot tell."""

from hybrid.labels.teacher_check import TeacherEstimate, by_audit
from hybrid.llm.check.measure import Interval


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
