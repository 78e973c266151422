"""The page for people (hybrid/serve/page) in a real browser: Debian's headless Chromium,
driven by Playwright. A person types an article, sees categories with their confidence
and tags with their reasons, corrects them, and the correction is stored; then reviews
the queue. Screenshots are left in the test's folder (and in $HYBRID_SCREENSHOTS if set)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from bson import Int64, ObjectId
from helpers import records
from serve_process import API_KEY, AUTH, start

from hybrid import data
from hybrid.config import Config
from hybrid.ingest.ids import id_key
from hybrid.ingest.records import read_jsonl
from hybrid.labels.ledger import FileLedger
from hybrid.mongo.store import Store

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium: `make browser` installs it")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_server(sample_model_dir, cache_dir, tmp_path_factory):
    """Feedback to a label ledger; the review queue over a file of unlabelled articles."""
    work = tmp_path_factory.mktemp("page")
    articles = work / "articles.jsonl"
    articles.write_text("".join(
        json.dumps({k: v for k, v in r.items() if k not in ("categories", "tags")},
                   ensure_ascii=False) + "\n"
        for r in read_jsonl(data.path("sample_unseen.jsonl"))), encoding="utf-8")
    server = start(sample_model_dir, cache_dir, work, "--labels", str(work / "labels.jsonl"),
                   "--data", str(articles))
    yield server, work
    server.stop()


# `_id`s that print alike (1 and "1"), and one a JavaScript number cannot hold exactly
TYPED_IDS = [1, "1", Int64(2**53 + 1), ObjectId("65a1b2c3d4e5f60718293a4b")]


@pytest.fixture(scope="module")
def collection_server(sample_model_dir, config, tmp_path_factory):
    """Feedback and the review queue over a MongoDB collection with typed `_id`s."""
    from mongo_server import mongo_uri

    work = tmp_path_factory.mktemp("collection-page")
    with mongo_uri(work) as uri:
        mongo = Config(cache_dir=config.cache_dir, mongo_uri=uri,
                       mongo_db=f"page_{uuid.uuid4().hex[:8]}", mongo_timeout=5.0)
        with Store(mongo) as store:
            store.articles.insert_many([{**{k: v for k, v in r.items() if k != "id"}, "_id": i}
                                        for r, i in zip(records(4), TYPED_IDS, strict=True)])
        server = start(sample_model_dir, config.cache_dir, work, env={
            "MONGODB_URI": uri, "HYBRID_MONGO_DB": mongo.mongo_db})
        yield server, mongo
        server.stop()


def shoot(page, work: Path, name: str) -> None:
    path = work / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("HYBRID_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["HYBRID_SCREENSHOTS"]) / path.name)


def used_fonts(page, selector: str) -> set[str]:
    """The fonts Chromium drew `selector`'s text with (DevTools' CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"] for f in fonts}


def test_a_person_corrects_a_suggestion_and_it_is_stored(browser, page_server):
    server, work = page_server
    page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_selector("#model-info:has-text('个分类')")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    page.fill("#title", "Nginx 反向代理与 HTTPS 证书配置")
    page.fill("#content", "本文介绍如何用 Nginx 做反向代理，配置 HTTPS 证书，开启 HTTP/2，"
                          "设置访问权限与限流，防止恶意请求；还讨论 CDN 缓存与安全头。")
    page.fill("#article-id", "page-1")
    page.click("#suggest")
    page.wait_for_selector(".editor .tags li")
    shoot(page, work, "suggestion")

    suggested = page.eval_on_selector_all(".categories li.suggested input",
                                          "boxes => boxes.map(b => b.value)")
    assert suggested and all(b for b in page.eval_on_selector_all(
        ".categories li.suggested .score", "cells => cells.map(c => c.textContent)"))
    assert "置信度" in page.inner_text(".summary")
    reasons = page.eval_on_selector_all(".tags .reason", "r => r.map(x => x.textContent)")
    assert reasons and all(reasons) and any("正文中出现" in r for r in reasons)
    assert {"Noto Sans CJK SC"} & used_fonts(page, ".categories li span span"), \
        "Chinese is not drawn with a CJK font"

    # the correction: another category instead of the first, one tag less, one tag more
    page.uncheck(f".categories input[value='{suggested[0]}']")
    page.check(".categories input[value='数据库']")
    dropped = page.get_attribute(".tags li:last-child", "data-tag")
    page.click(".tags li:last-child .remove")
    page.fill(".tag-input", "证书管理")
    page.press(".tag-input", "Enter")
    page.click(".editor .save")
    page.wait_for_selector(".editor .status.ok")
    shoot(page, work, "saved")
    labels = {r["id"]: r for r in read_jsonl(work / "labels.jsonl")}
    stored = labels["page-1"]
    assert stored["source"] == "manual"
    assert "数据库" in stored["categories"] and suggested[0] not in stored["categories"]
    assert "证书管理" in stored["tags"] and dropped not in stored["tags"]

    page.click("#tab-review")
    page.click("#load-queue")
    page.wait_for_selector("#review-result .editor", timeout=120_000)
    first = page.inner_text("#review-result .article-title")
    assert page.inner_text("#review-result .excerpt")
    shoot(page, work, "review")
    page.click("#review-result .accept")
    page.wait_for_selector("#queue-progress:has-text('第 2 /')", timeout=30_000)
    assert page.inner_text("#review-result .article-title") != first
    assert len(list(read_jsonl(work / "labels.jsonl"))) == 2
    assert errors == []
    page.close()


def test_the_page_shows_a_failure_and_saving_without_a_key_is_refused(browser, page_server):
    server, _ = page_server
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#title", "Vue 组件")
    page.fill("#content", "组合式 API")
    page.fill("#article-id", "page-2")
    page.click("#suggest")
    page.wait_for_selector(".editor .tags li")
    page.click(".editor .accept")
    page.wait_for_selector(".editor .status.error")
    assert "API key" in page.inner_text(".editor .status")
    page.close()


def test_the_review_queue_labels_each_article_by_its_typed_id(browser, collection_server):
    server, mongo = collection_server
    page = browser.new_page(locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    page.click("#tab-review")
    page.click("#load-queue")
    page.wait_for_selector("#review-result .editor", timeout=120_000)
    accepted = {}
    for number in range(1, len(TYPED_IDS) + 1):
        page.wait_for_selector(f"#queue-progress:has-text('第 {number} /')")
        title = page.inner_text("#review-result .article-title")
        accepted[title] = page.eval_on_selector_all(
            "#review-result .categories li.suggested input", "boxes => boxes.map(b => b.value)")
        page.click("#review-result .accept")
        page.wait_for_selector("#review-result .status.ok")
    page.wait_for_selector("#queue-progress:has-text('这一批审核完了')")
    with Store(mongo) as store:
        stored = {d["title"]: (id_key(d["_id"]), d.get("categories"), d["hybrid"]["source"])
                  for d in store.articles.find({"_id": {"$in": TYPED_IDS}})}
    assert {title: categories for title, (_, categories, _) in stored.items()} == accepted
    assert {source for _, _, source in stored.values()} == {"manual"}
    assert sorted(key for key, _, _ in stored.values()) == sorted(map(id_key, TYPED_IDS))
    assert errors == []
    page.close()


def test_feedback_to_a_ledger_takes_its_lock_and_is_checked(page_server):
    """No browser: the ledger's lock is the one a bootstrap holds while it labels."""
    server, work = page_server
    ledger = FileLedger(work / "labels.jsonl")
    with server.client(headers=AUTH) as c:
        with FileLedger(ledger.path).lock():
            held = c.post("/v1/feedback", json={"id": "lock-1", "categories": ["数据库"]})
        many = c.post("/v1/feedback", json={"id": "lock-1", "categories": [
            "数据库", "人工智能", "编程语言", "前端开发"]})
        tag = c.post("/v1/feedback", json={"id": "lock-1", "categories": ["数据库"],
                                           "tags": ["javascript:alert(1)"]})
        assert "lock-1" not in ledger.labels()
        saved = c.post("/v1/feedback", json={"id": "lock-1", "categories": ["DB"],
                                             "tags": ["Redis", "redis"]})
    assert held.status_code == 503 and held.headers["retry-after"], held.text
    assert "bootstrap" in held.json()["detail"] and held.json()["article"] == "lock-1"
    assert (many.status_code, many.json()["field"]) == (422, "categories")
    assert (tag.status_code, tag.json()["field"]) == (422, "tags")
    assert saved.status_code == 200, saved.text
    label = ledger.labels()["lock-1"]
    assert (label.categories, label.tags, label.source) == (["数据库"], ["Redis"], "manual")
