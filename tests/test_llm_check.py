"""hybrid llm check and the fallback gate: an LLM is measured on the articles it would get
before `run`, `tag-file` and `serve` use it as a fallback, the result is kept (verified) in
the model directory, and only what was measured to help is applied. The LLMs are the
gold-label server (hybrid.evaluation.oracle) and scripted stubs, on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from llm_stub import answer, items
from llm_stub import settings as llm_settings

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit, ModelError, UsageError
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.learn import artifacts
from hybrid.learn.model import HybridModel
from hybrid.llm.check import record
from hybrid.llm.check.gate import fallback_policy
from hybrid.llm.check.measure import measure
from hybrid.llm.refine import LLMRefiner

SAMPLE = data.path("sample_articles.jsonl")
UNSEEN = data.path("sample_unseen.jsonl")


def check(cache: Path, model_dir: Path, url: str, model: str, *args: str,
          labelled: Path = SAMPLE, env=None):
    return CliRunner().invoke(main, [
        "-q", "--cache-dir", str(cache), "llm", "check", "--model", str(model_dir), "--data",
        str(labelled), "--llm-base-url", url, "--llm-model", model, "--json", *args], env=env)


def tag_file(cache: Path, model_dir: Path, url: str, model: str, out: Path, *args: str,
             env=None):
    return CliRunner().invoke(main, [
        "-q", "--cache-dir", str(cache), "tag-file", str(UNSEEN), str(out), "--model",
        str(model_dir), "--json", "--llm-mode", "fallback", "--llm-base-url", url,
        "--llm-model", model, *args], env=env)


@pytest.fixture(scope="module")
def half(tmp_path_factory, sample_articles, sample_taxonomy, config):
    """A model trained on 64 sample articles, and the other 40 as a labelled file: a check
    on them uses the model's own predictions (no cross-validation to train)."""
    where = tmp_path_factory.mktemp("half")
    HybridModel.train(sample_articles[:64], sample_taxonomy, config).save(where / "model")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[64:]
    (where / "held.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return where / "model", where / "held.jsonl"


@pytest.fixture
def model_dir(half, tmp_path: Path) -> Path:
    """A copy of the half model, for this test to write checks into."""
    return Path(shutil.copytree(half[0], tmp_path / "model"))


@pytest.fixture(scope="module")
def checked(tmp_path_factory, half, sample_articles, sample_taxonomy, config):
    """The half model checked with a perfect LLM and with one that always answers a wrong
    category: (model dir, cache, perfect's URL, wrong's URL, results, stderr, oracle)."""
    from llm_stub import Stub

    where = tmp_path_factory.mktemp("checked")
    model_dir = Path(shutil.copytree(half[0], where / "model"))
    oracle = Oracle(sample_articles, sample_taxonomy, config.llm_article_tokens)
    wrong = Stub(lambda body, n: answer({"categories": ["前端开发"], "tags": []}))
    results, seen = {}, {}
    with serve(oracle) as url:
        for name, base in (("perfect", url), ("wrong", wrong.url)):
            result = check(Path(config.cache_dir), model_dir, base, name, "--budget", "40",
                           labelled=half[1])
            assert result.exit_code == 0, result.output
            results[name] = json.loads(result.stdout)
            seen[name] = result.stderr
        yield model_dir, Path(config.cache_dir), url, wrong.url, results, seen, oracle
    wrong.close()


def test_the_check_prints_its_cost_first_and_stays_in_its_budget(checked):
    results, seen = checked[4], checked[5]
    perfect = results["perfect"]
    assert "40 articles to check" in seen["perfect"] and "at most 40 requests" in seen["perfect"]
    assert perfect["estimate"] in seen["perfect"]
    assert perfect["sent"] == 40 and perfect["calls"] <= 40 and perfect["answered"] == 40
    assert perfect["how"].startswith("held out") and perfect["articles"] == 40
    assert perfect["intervals"].startswith("Wilson")


def test_a_perfect_llm_is_measured_better_and_recommended(checked):
    perfect = checked[4]["perfect"]
    assert perfect["llm_accuracy"]["value"] == 1.0
    assert perfect["llm_accuracy"]["low"] < 1.0  # an interval, not a point
    assert perfect["classifier_accuracy"]["value"] < 1.0
    rec = perfect["recommendation"]
    assert rec["use"] and rec["gain"]["low"] > 0 and 0 < rec["threshold"] <= 1.01
    routes = perfect["routes"]
    assert {r["top_k"] for r in routes} == {2, 3, 5, None}
    assert all(r["top1"] >= perfect["classifier_top1"] for r in routes)


def test_an_llm_that_is_worse_is_do_not_use(checked):
    wrong = checked[4]["wrong"]
    assert not wrong["recommendation"]["use"]
    assert wrong["llm_accuracy"]["value"] < wrong["classifier_accuracy"]["value"]
    assert "never helped" in wrong["recommendation"]["reason"]


def test_checks_are_kept_per_llm_in_the_model_directory_and_verified(checked, config):
    model_dir, _, url, *_ = checked
    artifacts.verify(model_dir)
    saved = json.loads((model_dir / record.ANNEX).read_text(encoding="utf-8"))
    assert len(saved["data"]["checks"]) == 2
    assert url not in json.dumps(saved) or "@" not in url  # keyed by a digest, URL shown bare
    found, current = record.find(model_dir, url, "perfect", None)
    assert current and found.recommendation.use
    assert record.find(model_dir, url, "another", None) == (None, True)


def test_fallback_uses_only_what_the_check_found_helps(checked, tmp_path):
    model_dir, cache, url, wrong_url, results, _, _ = checked
    out = tmp_path / "out.jsonl"
    ran = tag_file(cache, model_dir, url, "perfect", out)
    assert ran.exit_code == 0, ran.output
    llm = json.loads(ran.stdout)["llm"]
    rec = results["perfect"]["recommendation"]
    assert llm["threshold"] == rec["threshold"] and llm["top_k"] == rec["top_k"]
    assert not llm["unchecked"] and llm["check"].startswith("checked ")
    refused = tag_file(cache, model_dir, wrong_url, "wrong", out)
    assert refused.exit_code == Exit.USAGE
    assert "does not help" in refused.output and "hybrid llm check --model" in refused.output


def test_fallback_without_a_check_is_refused_with_the_command_to_run(model_dir, tmp_path,
                                                                     stub, config):
    s = stub()
    out = tmp_path / "out.jsonl"
    refused = tag_file(tmp_path, model_dir, s.url, "stub", out)
    assert refused.exit_code == Exit.USAGE and not s.requests and not out.exists()
    assert f"hybrid llm check --model {model_dir}" in refused.output
    assert "--llm-unchecked" in refused.output
    settings = config.with_overrides(llm_mode="fallback", llm_base_url=s.url, llm_model="stub")
    with pytest.raises(UsageError, match="has not been checked"):
        fallback_policy(settings, model_dir)  # what `serve` asks at start
    assert fallback_policy(settings.with_overrides(llm_mode="review-only"), model_dir)


def test_llm_unchecked_runs_anyway_and_the_report_says_so(model_dir, tmp_path, stub):
    s = stub(lambda body, n: answer({"categories": ["数据库"], "tags": []}))
    out = tmp_path / "out.jsonl"
    ran = tag_file(tmp_path, model_dir, s.url, "stub", out, "--llm-unchecked",
                   "--llm-threshold", "1.01")
    assert ran.exit_code == 0, ran.output
    llm = json.loads(ran.stdout)["llm"]
    assert llm["unchecked"] and llm["applied"] == 6 and "has not been checked" in llm["check"]
    text = CliRunner().invoke(main, [
        "-q", "--cache-dir", str(tmp_path), "tag-file", str(UNSEEN), str(out), "--model",
        str(model_dir), "--llm-mode", "fallback", "--llm-base-url", s.url, "--llm-model",
        "stub", "--llm-unchecked"])
    assert "UNCHECKED (--llm-unchecked)" in text.output


def test_an_edited_check_is_refused_with_the_model(checked, tmp_path):
    model_dir = Path(shutil.copytree(checked[0], tmp_path / "model"))
    path = model_dir / record.ANNEX
    saved = json.loads(path.read_text(encoding="utf-8"))
    for stored in saved["data"]["checks"].values():
        stored["recommendation"] = {**stored["recommendation"], "use": True, "threshold": 1.01,
                                    "top_k": None}
    path.write_text(json.dumps(saved), encoding="utf-8")
    with pytest.raises(ModelError, match=r"llm_checks\.json: its digest"):
        artifacts.verify(model_dir)
    ran = tag_file(checked[1], model_dir, checked[3], "wrong", tmp_path / "out.jsonl")
    assert ran.exit_code == Exit.MODEL, ran.output


def test_a_retrained_model_does_not_inherit_the_check(checked, tmp_path, sample_articles,
                                                      sample_taxonomy, config):
    model_dir, _, url, *_ = checked
    retrained = tmp_path / "model"
    HybridModel.train(sample_articles[:80], sample_taxonomy, config).save(retrained)
    assert not (retrained / record.ANNEX).exists()  # a save replaces the whole directory
    shutil.copy(model_dir / record.ANNEX, retrained / record.ANNEX)  # copied over by hand
    artifacts.verify(retrained)  # intact, but not this model's
    found, current = record.find(retrained, url, "perfect", None)
    assert found is not None and not current
    settings = config.with_overrides(llm_mode="fallback", llm_base_url=url,
                                     llm_model="perfect")
    with pytest.raises(UsageError, match="made for an earlier model"):
        fallback_policy(settings, retrained)


def test_a_signed_model_gets_a_signed_check_and_refuses_an_unsigned_one(
        tmp_path, half, sample_articles, sample_taxonomy, config, oracle):
    model_dir = tmp_path / "model"
    HybridModel.train(sample_articles[:64], sample_taxonomy, config).save(model_dir, key="k1")
    refused = check(Path(config.cache_dir), model_dir, oracle.url, "perfect", "--budget", "5",
                    labelled=half[1], env={"HYBRID_MODEL_KEY": ""})
    assert refused.exit_code == Exit.MODEL and "set HYBRID_MODEL_KEY" in refused.output
    done = check(Path(config.cache_dir), model_dir, oracle.url, "perfect", "--budget", "5",
                 labelled=half[1], env={"HYBRID_MODEL_KEY": "k1"})
    assert done.exit_code == 0, done.output
    artifacts.verify(model_dir, key="k1")
    path = model_dir / record.ANNEX
    unsigned = json.loads(path.read_text(encoding="utf-8"))
    del unsigned["signature"]
    path.write_text(json.dumps(unsigned), encoding="utf-8")
    with pytest.raises(ModelError, match="unsigned, or its signature"):
        artifacts.verify(model_dir, key="k1")


def test_articles_the_model_learned_are_predicted_out_of_fold_and_never_their_own_example(
        sample_model_dir, tmp_path, stub):
    """The sample model trained on every sample article: the check cross-validates, and
    no article is shown to the LLM with its own label as a few-shot example."""
    model_dir = Path(shutil.copytree(sample_model_dir, tmp_path / "model"))
    s = stub(lambda body, n: answer({"categories": ["数据库"], "tags": []}))
    done = check(tmp_path, model_dir, s.url, "stub", "--budget", "6", "--folds", "2")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["how"] == "out of fold (2 folds)"
    assert len(s.requests) == 6
    for body in s.requests:
        prompt = body["messages"][-1]["content"]
        examples, article = prompt.split("<article>")
        title = article.strip().splitlines()[0].removeprefix("Title: ")
        assert "Similar labelled articles" in examples and f"- {title} →" not in examples


def test_a_zero_shot_model_is_checked_on_its_own_predictions(tmp_path, sample_articles,
                                                             sample_taxonomy, config, stub):
    """Day one's model learned no category from any article: cross-validating supervised
    models would measure another classifier than the one the fallback backs up."""
    model_dir = tmp_path / "zero-shot"
    unlabelled = [replace(a, categories=[], tags=[]) for a in sample_articles]
    HybridModel.train(unlabelled, sample_taxonomy, config).save(model_dir)
    s = stub(lambda body, n: answer({"categories": ["数据库"], "tags": []}))
    done = check(tmp_path, model_dir, s.url, "stub", "--budget", "5")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["how"].startswith("held out") and result["articles"] == len(sample_articles)


def test_an_answer_outside_the_top_k_is_kept_for_review_not_applied(tmp_path, stub):
    from hybrid.llm.check.gate import FallbackPolicy

    s = stub(lambda body, n: answer({"categories": ["安全最佳实践"], "tags": []}))
    batch = items(2)  # the classifier ranks 前端开发, then 数据库
    with LLMRefiner(llm_settings(tmp_path, s.url), _taxonomy(),
                    policy=FallbackPolicy(0.5, top_k=2)) as refiner:
        out = refiner.refine(batch)
    for got, (_, _, before) in zip(out, batch, strict=True):
        assert got.output() == before.output() and got.source == "model"
        assert got.llm["status"] == "outside_top_k" and got.llm["top_k"] == 2
        assert got.llm["suggestion"]["categories"] == ["安全最佳实践"]
    assert refiner.stats.outside_top_k == 2 and refiner.stats.applied == 0


def _taxonomy():
    from llm_stub import TAXONOMY

    return TAXONOMY


def test_the_measure_of_a_small_set_by_hand():
    """Four articles asked of ten; the LLM right on the three least confident, where the
    classifier was right on one: routing them gains 2 of 10 articles."""
    confidence = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    right = [False, True, False, True] + [True] * 6
    gold = [{"a"}, {"b"}, {"c"}, {"d"}]
    m = measure(confidence, right, [0, 1, 2, 3], ["a", "b", "c", "x"],
                [["x", "a"], ["b", "a"], ["y", "z", "c"], ["d", "x"]], gold,
                [True] * 4)
    assert m.answered == 4 and m.llm_accuracy.value == 0.75
    assert m.classifier_accuracy.value == 0.5 and m.classifier_top1 == 0.8
    under_04 = {r.top_k: r for r in m.routes if r.routed == 3}
    assert under_04[None].gain.value == pytest.approx(0.2)
    assert under_04[2].gain.value == pytest.approx(0.1)  # "c" is third: held
    every = {r.top_k: r for r in m.routes if r.routed == 4}
    assert every[None].gain.value == pytest.approx(0.1)  # "x" broke the fourth


def test_the_check_measures_against_peoples_labels_only(tmp_path, half):
    refused = CliRunner().invoke(main, [
        "-q", "--cache-dir", str(tmp_path), "llm", "check", "--model", str(half[0]),
        "--label-source", "manual,llm", "--llm-base-url", "http://127.0.0.1:9/v1",
        "--llm-model", "m"])
    assert refused.exit_code == Exit.USAGE and "people's labels" in refused.output
