"""hybrid.labels.bootstrap (`hybrid bootstrap`): day one, with real parts only: a teacher
over HTTP on 127.0.0.1 that answers from held labels (hybrid.evaluation.oracle), scripted
hostile and broken ones, and the real llama.cpp server as a weak teacher."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import fill_in, records
from llm_server import find_model, llama_server_available, run_llama_server
from llm_stub import INJECTION, answer

from hybrid import data
from hybrid.cli import main
from hybrid.evaluation.oracle import Oracle
from hybrid.ingest.clean import clean
from hybrid.labels.ledger import FileLedger
from hybrid.labels.teacher import LLMTeacher
from hybrid.learn.artifacts import read_manifest
from hybrid.mongo.lease import Lease
from hybrid.mongo.store import Store

TAXONOMY = data.path("sample_taxonomy.json")
CATEGORIES = 8  # in the sample taxonomy


def unlabelled(tmp_path: Path, extra: list[dict] = ()) -> Path:
    path = tmp_path / "unlabelled.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                            for r in [*records(104), *extra]), encoding="utf-8")
    return path


def bootstrap(tmp_path: Path, url: str, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, [
        "--quiet", "--cache-dir", str(tmp_path / "cache"), "bootstrap", "--taxonomy",
        str(TAXONOMY), "--data", str(tmp_path / "unlabelled.jsonl"), "--labels",
        str(tmp_path / "labels.jsonl"), "--out", str(tmp_path / "model"), "--llm-base-url",
        url, "--llm-model", "teacher", *args], env={"MONGODB_URI": "", **(env or {})})


def test_a_perfect_teacher_labels_the_budget_and_a_rerun_pays_nothing(tmp_path, oracle,
                                                                       sample_articles):
    unlabelled(tmp_path)
    result = bootstrap(tmp_path, oracle.url, "--per-category", "2")
    assert result.exit_code == 0, result.output
    labels = FileLedger(tmp_path / "labels.jsonl").labels()
    # and one negative control for each label checked (the whole first round)
    assert len(labels) == 2 * CATEGORIES and oracle.calls == 4 * CATEGORIES
    gold = {a.id: a.categories for a in sample_articles}
    assert all(label.categories == gold[k] and label.source == "llm" and label.model ==
               "teacher" and label.prompt_tokens > 0 for k, label in labels.items())
    assert "round 1:" in result.stdout
    assert "out-of-fold accuracy" in result.stdout
    assert "the teacher is not worse than the zero-shot model" in result.stdout  # checked
    assert "answered with none" in result.stdout
    manifest = read_manifest(tmp_path / "model")
    assert not manifest["zero_shot"] and manifest["training"]["articles"] == 2 * CATEGORIES

    again = bootstrap(tmp_path, oracle.url, "--per-category", "2")
    assert again.exit_code == 0 and oracle.calls == 4 * CATEGORIES  # a rerun: no new call
    assert "budget is labelled" in again.stdout


def test_the_cost_is_printed_before_any_call_and_dry_run_stops_there(tmp_path, oracle):
    unlabelled(tmp_path)
    result = CliRunner().invoke(main, [
        "--cache-dir", str(tmp_path / "cache"), "bootstrap", "--taxonomy", str(TAXONOMY),
        "--data", str(tmp_path / "unlabelled.jsonl"), "--labels", str(tmp_path / "l.jsonl"),
        "--out", str(tmp_path / "model"), "--per-category", "5", "--dry-run", "--json"],
        env={"MONGODB_URI": ""})
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    estimate, controls = outcome["estimate"], outcome["controls"]
    assert estimate["articles"] == 5 * CATEGORIES and estimate["prompt_tokens"] > 0
    assert estimate["gpt_4o_mini"] > 0 and oracle.calls == 0
    # the teacher check's controls: one for each of the first round's labels, a short list
    assert controls["articles"] == 2 * CATEGORIES and "controls" in controls["purpose"]
    per_article = estimate["prompt_tokens"] / estimate["articles"]
    assert 0 < controls["prompt_tokens"] / controls["articles"] < per_article
    assert not (tmp_path / "l.jsonl").exists()


def test_the_budget_holds_across_runs(tmp_path, oracle):
    unlabelled(tmp_path)
    first = bootstrap(tmp_path, oracle.url, "--per-category", "2",
                      env={"HYBRID_LLM_MAX_CALLS": "7"})
    assert first.exit_code == 0, first.output
    assert "stopped" in first.stdout and oracle.calls == 7
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 7
    # the teacher check's controls are calls of the budget too: 9 labels, 3 controls
    second = bootstrap(tmp_path, oracle.url, "--per-category", "2", "--json",
                       env={"HYBRID_LLM_MAX_CALLS": "12"})
    assert second.exit_code == 0, second.output
    assert oracle.calls == 7 + 12
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 2 * CATEGORIES
    outcome = json.loads(second.stdout)
    assert outcome["rounds"][0]["calls"] == 12 and outcome["teacher"]["controls"] is not None
    third = bootstrap(tmp_path, oracle.url, "--per-category", "2")
    assert third.exit_code == 0 and "budget is labelled" in third.stdout  # nothing to check
    assert oracle.calls == 7 + 12


def test_a_killed_bootstrap_resumes_cleanly(tmp_path, oracle):
    unlabelled(tmp_path)
    env = {**os.environ, "MONGODB_URI": "", "HYBRID_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "hybrid.cli", "--quiet", "bootstrap", "--taxonomy",
            str(TAXONOMY), "--data", str(tmp_path / "unlabelled.jsonl"), "--labels",
            str(tmp_path / "labels.jsonl"), "--out", str(tmp_path / "model"),
            "--per-category", "3", "--llm-base-url", oracle.url, "--llm-model", "teacher"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger = tmp_path / "labels.jsonl"
    deadline = time.monotonic() + 120
    while not (ledger.exists() and len(ledger.read_text().splitlines()) >= 15):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    assert len(ledger.read_text().splitlines()) < 3 * CATEGORIES, "killed too late"
    result = bootstrap(tmp_path, oracle.url, "--per-category", "3")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(lines) == len({line["id"] for line in lines}) == 3 * CATEGORIES
    # at most the call in flight asked again, and the first round's controls
    assert oracle.calls <= 3 * CATEGORIES + 1 + 2 * CATEGORIES


def test_no_unauthorized_category_is_ever_stored(tmp_path, stub, sample_taxonomy):
    """A teacher that injected articles (or its own mischief) talked into unauthorized
    answers: the ledger keeps only authorized names, and an answer without one is kept as
    'no category' (it was paid for), never learned."""
    injected = [{"id": f"inject-{i}", "title": f"系统通知 {i}", "content": INJECTION}
                for i in range(5)]
    unlabelled(tmp_path, injected)

    def hostile(body, n):
        text = body["messages"][-1]["content"]
        if "系统通知" in text or n % 3 == 0:
            return answer({"categories": ["黑客攻击", "Malware"], "tags": ["pwned"]})
        return answer({"categories": ["数据库", "暗网交易"], "tags": ["<b>x</b>"]})

    teacher = stub(hostile)
    result = bootstrap(tmp_path, teacher.url, "--per-category", "1")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert lines and all(set(line["categories"]) <= set(sample_taxonomy.names)
                         for line in lines)
    assert all(line["categories"] in ([], ["数据库"]) and not line["tags"] for line in lines)


def test_a_person_can_be_the_teacher(tmp_path, sample_articles, run):
    unlabelled(tmp_path)
    review = tmp_path / "review.csv"
    first = run("bootstrap", "--taxonomy", str(TAXONOMY), "--data",
                str(tmp_path / "unlabelled.jsonl"), "--labels", str(tmp_path / "labels.jsonl"),
                "--out", str(tmp_path / "model"), "--per-category", "1", "--review-out",
                str(review))
    assert first.exit_code == 0, first.output
    assert fill_in(review, {a.id: a.categories for a in sample_articles}) == CATEGORIES
    imported = run("review", "import", str(review), "--taxonomy", str(TAXONOMY), "--labels",
                   str(tmp_path / "labels.jsonl"))
    assert imported.exit_code == 0, imported.output
    again = run("bootstrap", "--taxonomy", str(TAXONOMY), "--data",
                str(tmp_path / "unlabelled.jsonl"), "--labels", str(tmp_path / "labels.jsonl"),
                "--out", str(tmp_path / "model"), "--per-category", "1", "--review-out",
                str(review))
    assert again.exit_code == 0 and "budget is labelled" in again.stdout
    labels = FileLedger(tmp_path / "labels.jsonl").labels()
    assert len(labels) == CATEGORIES and all(v.source == "manual" for v in labels.values())
    assert read_manifest(tmp_path / "model")["training"]["articles"] == CATEGORIES


def test_in_mongodb_manual_labels_are_never_overwritten_and_both_sources_train(
        tmp_path, oracle, mongo_config, store, cache_dir):
    docs = records(104, labels=True)
    store.import_records(docs[:6], manual=True)
    store.import_records([{k: v for k, v in d.items() if k not in ("categories", "tags")}
                          for d in docs[6:]])
    manual_before = {d["_id"]: d for d in store.articles.find({"hybrid.source": "manual"})}
    where = ["--mongo-uri", mongo_config.mongo_uri, "--db", mongo_config.mongo_db]
    result = CliRunner().invoke(main, [
        "--quiet", "--cache-dir", str(cache_dir), "bootstrap", "--taxonomy", str(TAXONOMY),
        "--out", str(tmp_path / "model"), "--per-category", "2", "--llm-base-url", oracle.url,
        "--llm-model", "teacher", *where])
    assert result.exit_code == 0, result.output
    # the manual labels count towards the budget; each of the teacher's gets a control
    assert oracle.calls == 2 * (2 * CATEGORIES - 6)
    for key, doc in manual_before.items():
        assert store.articles.find_one({"_id": key}) == doc
    teacher_labelled = store.articles.count_documents({"hybrid.teacher": {"$exists": True}})
    assert teacher_labelled == 2 * CATEGORIES - 6
    for source, count in (("manual", 6), ("llm", 2 * CATEGORIES - 6),
                          ("manual,llm", 2 * CATEGORIES)):
        trained = CliRunner().invoke(main, [
            "--quiet", "--cache-dir", str(cache_dir), "train", "--label-source", source,
            "--taxonomy", str(TAXONOMY), "--out", str(tmp_path / source), "--json", *where])
        assert trained.exit_code == 0, trained.output
        assert json.loads(trained.stdout)["training"]["articles"] == count
    with Store(mongo_config) as again:
        assert again.articles.count_documents({"hybrid.source": "manual"}) == 6


def test_in_mongodb_long_ids_are_labelled_once_and_trained_on(tmp_path, oracle, mongo_config,
                                                             store):
    """`_id`s of 255 characters are one key everywhere (ledger, bootstrap, training): a
    rerun, even with a fresh cache, pays for nothing, and trains on every label."""
    store.articles.insert_many([{**{k: v for k, v in d.items() if k != "id"},
                                 "_id": f"{i:03d}" + "x" * 252} for i, d in enumerate(records(40))])
    model = tmp_path / "model"
    for cache in ("cache-1", "cache-2"):
        result = CliRunner().invoke(main, [
            "--quiet", "--cache-dir", str(tmp_path / cache), "bootstrap", "--taxonomy",
            str(TAXONOMY), "--out", str(model), "--per-category", "1", "--llm-base-url",
            oracle.url, "--llm-model", "teacher", "--mongo-uri", mongo_config.mongo_uri,
            "--db", mongo_config.mongo_db])
        assert result.exit_code == 0, result.output
        assert oracle.calls == 2 * CATEGORIES  # each label and its control, once
        assert read_manifest(model)["training"]["articles"] == CATEGORIES
    assert "the budget is labelled" in result.stdout


@pytest.mark.llm
def test_the_real_local_llm_as_a_weak_teacher(tmp_path, sample_taxonomy):
    ok, why = llama_server_available()
    if not ok:
        pytest.skip(why)
    path = tmp_path / "unlabelled.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(40)),
                    encoding="utf-8")
    with run_llama_server(find_model(), n_threads=1) as url:
        result = bootstrap(tmp_path, url, "--per-category", "1",
                           env={"HYBRID_LLM_MAX_OUTPUT_TOKENS": "60",
                                "HYBRID_LLM_ARTICLE_TOKENS": "200", "HYBRID_LLM_FEW_SHOT": "0"})
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert 0 < len(lines) <= CATEGORIES
    assert all(set(line["categories"]) <= set(sample_taxonomy.names) for line in lines)


def test_two_bootstraps_on_one_ledger_never_both_pay(tmp_path, oracle):
    """The second of two identical bootstraps finds the ledger's lock held: exit 5 at once,
    no call; the first labels the budget alone."""
    unlabelled(tmp_path)
    ledger = tmp_path / "labels.jsonl"
    env = {**os.environ, "MONGODB_URI": "", "HYBRID_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.Popen([
        sys.executable, "-m", "hybrid.cli", "--quiet", "bootstrap", "--taxonomy", str(TAXONOMY),
        "--data", str(tmp_path / "unlabelled.jsonl"), "--labels", str(ledger), "--out",
        str(tmp_path / "model"), "--per-category", "2", "--llm-base-url", oracle.url,
        "--llm-model", "teacher"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600  # a loaded machine takes minutes to its first label
    while not (ledger.exists() and ledger.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    second = bootstrap(tmp_path, oracle.url, "--per-category", "2")
    calls = oracle.calls
    assert first.wait(timeout=600) == 0, first.communicate()
    assert second.exit_code == 5, second.output
    assert "another bootstrap is labelling with" in second.output
    assert "Traceback" not in second.output
    lines = ledger.read_text().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines}) == 2 * CATEGORIES
    # the second paid nothing: each label and its control, once
    assert oracle.calls == 4 * CATEGORIES and calls <= oracle.calls


def test_in_mongodb_a_bootstrap_waits_for_the_collections_lease(tmp_path, oracle, store,
                                                                mongo_config, cache_dir):
    store.import_records(records(30))
    nightly = Lease(store, "nightly-run")
    nightly.take()
    result = CliRunner().invoke(main, [
        "--quiet", "--cache-dir", str(cache_dir), "bootstrap", "--taxonomy", str(TAXONOMY),
        "--out", str(tmp_path / "model"), "--per-category", "1", "--llm-base-url", oracle.url,
        "--llm-model", "teacher", "--mongo-uri", mongo_config.mongo_uri, "--db",
        mongo_config.mongo_db])
    assert result.exit_code == 5, result.output
    assert "nightly-run" in result.output and "holds the lease" in result.output
    assert oracle.calls == 0 and not store.articles.count_documents(
        {"hybrid.teacher": {"$exists": True}})
    assert not (tmp_path / "model").exists()


def malformed_or_odd(body, n):
    """Every other answer a teacher server can break: answers with nonsense usage are still
    answers (their tokens are estimated); the others are errors for their article."""
    label = {"categories": ["数据库"], "tags": []}
    kinds = [
        {"choices": [{"message": "hi"}]},
        {"choices": [{"message": {"content": [{"type": "text", "text": json.dumps(label)}]}}]},
        {**answer(label)[1], "usage": "none"},
        {**answer(label)[1], "usage": {"prompt_tokens": "lots"}},
        {**answer(label)[1], "usage": {"prompt_tokens": -1_000_000, "completion_tokens": -9}},
    ]
    return 200, kinds[(n - 1) % len(kinds)]


def test_malformed_answers_are_errors_for_their_article_and_the_rounds_go_on(tmp_path, stub):
    unlabelled(tmp_path)
    teacher = stub(malformed_or_odd)
    result = bootstrap(tmp_path, teacher.url, "--per-category", "1",
                       env={"HYBRID_LLM_RETRIES": "0"})
    assert result.exit_code == 0, result.output
    # the round's calls: its articles, and a control for each of its 4 labels
    assert f"round 1: 4 new labels ({CATEGORIES + 4} calls" in result.stdout
    assert "4 articles without a usable answer" in result.stdout
    lines = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(line["categories"] == ["数据库"] for line in lines)
    assert all(line["prompt_tokens"] > 100 and line["completion_tokens"] > 0 for line in lines)


@pytest.mark.parametrize("payload", [
    {"choices": [{"message": "hi"}]},
    {"choices": [{"message": {"content": ["{}"]}}]},
    {"choices": [{"message": {"content": 5}}]},
    {"choices": {"0": {}}},
    ["not", "an", "object"],
], ids=["message-text", "content-list", "content-number", "choices-object", "list"])
def test_the_teacher_takes_a_malformed_answer_as_an_error(tmp_path, stub, config,
                                                         sample_articles, sample_taxonomy,
                                                         payload):
    teacher_server = stub(lambda body, n: (200, payload))
    settings = replace(config, cache_dir=str(tmp_path), llm_base_url=teacher_server.url,
                       llm_model="teacher", llm_retries=1, llm_backoff=0.01)
    article = sample_articles[0]
    with contextlib.closing(LLMTeacher(settings, sample_taxonomy)) as teacher:
        assert teacher.label(article, clean(article)) == "error"
        assert teacher.stats.errors == 1 and teacher.asker.budget.calls == 2


def test_bootstrap_never_writes_over_its_articles(tmp_path, run):
    unlabelled(tmp_path)
    articles = tmp_path / "unlabelled.jsonl"
    before = articles.read_bytes()
    for labels, review in ((articles, tmp_path / "review.csv"),
                           (tmp_path / "labels.jsonl", articles),
                           (tmp_path / "labels.jsonl", tmp_path / "labels.jsonl")):
        result = run("bootstrap", "--taxonomy", str(TAXONOMY), "--data", str(articles),
                     "--labels", str(labels), "--out", str(tmp_path / "model"),
                     "--per-category", "1", "--review-out", str(review))
        assert result.exit_code == 2 and "is the input" in result.output, result.output
    assert articles.read_bytes() == before and not (tmp_path / "model").exists()


def test_a_teacher_worse_than_the_zero_shot_model_is_stopped_before_more_is_spent(
        tmp_path, stub, monkeypatch):
    """A teacher that names the same category whatever the article. The check comes after
    the first round, or after CHECK_AFTER labels when that round is longer (here 12 of its
    16): nothing more is asked, the numbers are shown, the model is the zero-shot one; a
    rerun stops there again without a call; --llm-unchecked goes on."""
    monkeypatch.setattr("hybrid.labels.bootstrap.CHECK_AFTER", 12)
    unlabelled(tmp_path)
    s = stub(lambda body, n: answer({"categories": ["数据库"], "tags": []}))
    result = bootstrap(tmp_path, s.url, "--per-category", "3", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 12
    assert len(s.requests) == 12 + 12  # and a negative control for each
    teacher = outcome["teacher"]
    assert teacher["how"] == "agreement" and teacher["articles"] == 12
    assert teacher["teacher"]["high"] < teacher["zero_shot"]["value"]
    assert "estimated worse than the zero-shot model" in outcome["stopped"]
    assert f"the other {3 * CATEGORIES - 12} labels" in outcome["stopped"]
    assert outcome["rounds"][0]["new"] == 12 and not outcome["rounds"][0]["trained"]
    assert read_manifest(tmp_path / "model")["zero_shot"]
    again = bootstrap(tmp_path, s.url, "--per-category", "3")
    assert again.exit_code == 0 and len(s.requests) == 24
    assert "teacher accuracy" in again.stdout and "stopped:" in again.stdout
    anyway = bootstrap(tmp_path, s.url, "--per-category", "3", "--llm-unchecked")
    assert anyway.exit_code == 0 and len(s.requests) == 3 * CATEGORIES + 12
    assert "teacher is worse" in anyway.stdout and "stopped" not in anyway.stdout


def test_a_teacher_that_picks_from_any_list_is_stopped_by_its_negative_controls(
        tmp_path, stub, sample_articles, sample_taxonomy, config):
    """The authors' categories on the whole list, but a pick from every list of the
    categories the zero-shot model finds least likely, where a careful teacher answers none
    (as the 0.5B does on csl, where agreement cannot tell it from a good teacher). Agreement
    alone does not stop it; its controls bound its accuracy at 0, and it is stopped."""
    gold = Oracle(sample_articles, sample_taxonomy, config.llm_article_tokens)

    def picks(body: dict, n: int) -> tuple[int, dict]:
        schema = body["response_format"]["json_schema"]["schema"]
        offered = schema["properties"]["categories"]["items"]["enum"]
        if len(offered) < CATEGORIES:
            return answer({"categories": offered[:1], "tags": []})
        return 200, gold.answer(body)

    unlabelled(tmp_path)
    s = stub(picks)
    result = bootstrap(tmp_path, s.url, "--per-category", "3", "--json")
    assert result.exit_code == 0, result.output
    teacher = json.loads(result.stdout)["teacher"]
    assert teacher["teacher"]["high"] >= teacher["zero_shot"]["value"]  # agreement: fine
    assert teacher["controls"]["value"] == 0.0
    assert teacher["controls"]["high"] < teacher["zero_shot"]["value"]
    stopped = json.loads(result.stdout)["stopped"]
    assert "estimated worse than the zero-shot model (accuracy at most 0.000" in stopped
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 2 * CATEGORIES
    assert len(s.requests) == 4 * CATEGORIES and read_manifest(tmp_path / "model")["zero_shot"]


def test_a_teacher_that_fails_some_answers_is_checked_as_soon_as_it_was_asked_enough(
        tmp_path, stub, monkeypatch):
    """Three of the first 12 answers are unusable: the check still comes after 12 articles
    asked (on the 9 labels there are), not at the end of the round, once 12 labels exist."""
    monkeypatch.setattr("hybrid.labels.bootstrap.CHECK_AFTER", 12)
    unlabelled(tmp_path)
    s = stub(lambda body, n: (200, {"choices": [{"message": "hi"}]}) if n <= 3
             else answer({"categories": ["数据库"], "tags": []}))
    result = bootstrap(tmp_path, s.url, "--per-category", "3", "--json",
                       env={"HYBRID_LLM_RETRIES": "0"})
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 9
    assert len(s.requests) == 12 + 9  # a negative control for each label
    assert outcome["teacher"]["articles"] == 9
    assert "estimated worse than the zero-shot model" in outcome["stopped"]


def test_a_resumed_bootstrap_checks_its_teacher_on_the_first_rounds_labels(
        tmp_path, oracle, stub):
    """The first round passes the check; a run to a larger budget checks again on those
    same labels, not on the later rounds' (the articles the model was least sure of, where
    a good teacher looked worse than the zero-shot model and was stopped)."""
    unlabelled(tmp_path)
    first = bootstrap(tmp_path, oracle.url, "--per-category", "2", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["teacher"]["articles"] == 2 * CATEGORIES
    constant = stub(lambda body, n: answer({"categories": ["数据库"], "tags": []}))
    second = bootstrap(tmp_path, constant.url, "--per-category", "3", "--llm-unchecked")
    assert second.exit_code == 0, second.output
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 3 * CATEGORIES
    third = bootstrap(tmp_path, oracle.url, "--per-category", "5", "--json")
    assert third.exit_code == 0, third.output
    outcome = json.loads(third.stdout)
    assert outcome["teacher"]["articles"] == 2 * CATEGORIES
    assert not outcome.get("stopped")
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 5 * CATEGORIES


@pytest.mark.parametrize("good", [True, False])
def test_an_audit_sheet_measures_the_teacher_on_a_persons_labels(tmp_path, oracle, stub,
                                                                 sample_articles, good):
    """After the first round the blind sheet waits for a person; filled in, it decides."""
    unlabelled(tmp_path)
    url = oracle.url if good else stub(
        lambda body, n: answer({"categories": ["数据库"], "tags": []})).url
    sheet = tmp_path / "audit.csv"
    first = bootstrap(tmp_path, url, "--per-category", "3", "--audit", str(sheet))
    assert first.exit_code == 0, first.output
    assert f"to audit → {sheet}" in first.stdout and read_manifest(tmp_path / "model")["zero_shot"]
    assert len(FileLedger(tmp_path / "labels.jsonl").labels()) == 2 * CATEGORIES
    rows = sheet.read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 1 + 2 * CATEGORIES and "数据库" not in sheet.read_text("utf-8-sig")
    waiting = bootstrap(tmp_path, url, "--per-category", "3", "--audit", str(sheet))
    assert "no category is filled in" in waiting.stdout
    fill_in(sheet, {a.id: a.categories for a in sample_articles})
    audited = bootstrap(tmp_path, url, "--per-category", "3", "--audit", str(sheet), "--json")
    assert audited.exit_code == 0, audited.output
    outcome = json.loads(audited.stdout)
    assert outcome["teacher"]["how"] == "audit"
    assert outcome["teacher"]["articles"] == 2 * CATEGORIES
    labels = FileLedger(tmp_path / "labels.jsonl").labels()
    if good:
        assert outcome["teacher"]["teacher"]["value"] == 1.0 and outcome["stopped"] is None
        assert len(labels) == 3 * CATEGORIES
    else:
        assert "estimated worse" in outcome["stopped"] and len(labels) == 2 * CATEGORIES
        assert outcome["teacher"]["teacher"]["high"] < outcome["teacher"]["zero_shot"]["value"]


def test_a_first_round_stopped_for_an_audit_goes_on_with_the_articles_it_chose(
        tmp_path, oracle, sample_articles, monkeypatch):
    """Stopped after 5 articles for the person, the first round resumes with the rest of
    the articles it chose from the zero-shot model at its start: the labels are those of a
    run never stopped, not a choice made again by a model of 5 labels."""
    monkeypatch.setattr("hybrid.labels.bootstrap.CHECK_AFTER", 5)
    straight, audited = tmp_path / "straight", tmp_path / "audited"
    for where in (straight, audited):
        where.mkdir()
        unlabelled(where)
    assert bootstrap(straight, oracle.url, "--per-category", "2").exit_code == 0
    sheet = audited / "audit.csv"
    first = bootstrap(audited, oracle.url, "--per-category", "2", "--audit", str(sheet))
    assert f"to audit → {sheet}" in first.stdout
    assert len(FileLedger(audited / "labels.jsonl").labels()) == 5
    fill_in(sheet, {a.id: a.categories for a in sample_articles})
    resumed = bootstrap(audited, oracle.url, "--per-category", "2", "--audit", str(sheet))
    assert resumed.exit_code == 0 and "stopped:" not in resumed.stdout, resumed.output
    assert (set(FileLedger(audited / "labels.jsonl").labels())
            == set(FileLedger(straight / "labels.jsonl").labels()))
