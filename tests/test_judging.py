"""hybrid.evaluation.judging and scripts/judge.py: blind sheets, strict reading of a judge's
verdicts, and the scores per system (synthetic articles only)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.errors import UsageError
from hybrid.evaluation.judging.scores import format_scores, score
from hybrid.evaluation.judging.sheet import Key, build_sheet, dump_lists, write_sheet
from hybrid.evaluation.judging.verdicts import VerdictError, read_verdicts
from hybrid.ingest.article import Article

ROOT = Path(__file__).resolve().parents[1]


def make_articles(n: int = 12) -> dict[str, Article]:
    long_body = "容器编排的调度策略与资源配额。" * 50  # 750 characters of prose
    articles = {}
    for k in range(n):
        body = long_body if k % 2 else "短文:一段简短的说明。"
        articles[f"secret-id-{k:03d}"] = Article(
            id=f"secret-id-{k:03d}", title=f"第 {k} 篇:调度器笔记",
            description="关于调度" if k % 3 else "",
            content=f"{body}\n\n```go\nfunc main() {{}}\n```\n", tags=[f"调度{k}", "容器"])
    return articles


def make_lists(articles: dict[str, Article]) -> dict[str, dict[str, list[str]]]:
    ids = list(articles)
    return {"ours": {i: ["Kubernetes", "调度器", "资源配额"] for i in ids},
            "jieba": {i: ["调度", "策略", "资源", "配额", "容器"] if k else []
                      for k, i in enumerate(ids)},
            "author": {i: articles[i].tags for i in ids}}


def make_sheet(n: int = 8, seed: int = 0) -> tuple[str, Key]:
    articles = make_articles()
    return build_sheet(articles, make_lists(articles), n, seed, "demo",
                       {"ours": "dump.json (hybrid)"})


def fill(key: Key, reject: dict[str, str] | None = None, rating: int = 4,
         missing: list[str] | None = None) -> list[dict]:
    """A judge's lines: every tag accepted except the tags in `reject` (tag → reason)."""
    reject = reject or {}
    return [{"id": a.id, "lists": {
        letter: {"tags": [{"tag": t, "verdict": "REJECT" if t in reject else "ACCEPT",
                           "reason": reject.get(t)} for t in shown.tags],
                 "rating": rating, "missing": missing or []}
        for letter, shown in a.lists.items()}} for a in key.articles]


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
                              for x in lines) + "\n", encoding="utf-8")
    return path


def test_sheet_is_blind_and_shows_every_list():
    text, key = make_sheet()
    assert not re.search(r"ours|jieba|author|hybrid|secret-id|dump", text, re.IGNORECASE)
    assert [a.id for a in key.articles] == [str(k) for k in range(1, 9)]
    for a in key.articles:
        block = text.split(f"\n## {a.id}\n")[1].split("\n## ")[0]
        assert sorted(x.system for x in a.lists.values()) == ["author", "jieba", "ours"]
        for letter, shown in a.lists.items():
            expected = json.dumps(shown.tags, ensure_ascii=False) if shown.tags else "(no tags)"
            assert f"- {letter}: {expected}\n" in block + "\n"
    # the letters are drawn per article: no system keeps one letter throughout
    for system in key.systems:
        assert len({x for a in key.articles for x, s in a.lists.items()
                    if s.system == system}) > 1


def test_sheet_is_seeded_and_the_key_round_trips(tmp_path):
    text, key = make_sheet(seed=3)
    assert make_sheet(seed=3) == (text, key)
    assert make_sheet(seed=4)[0] != text
    # another set, or other lists on the same articles, get other letters
    articles = make_articles()
    lists = make_lists(articles)
    other = build_sheet(articles, lists, 8, 3, "other", {})[1]
    lists["ours"] = {i: [*tags, "调度策略"] for i, tags in lists["ours"].items()}
    later = build_sheet(articles, lists, 8, 3, "demo", {})[1]
    assert [a.article for a in later.articles] == [a.article for a in key.articles]

    def letters(k: Key) -> list[list[str]]:
        return [[a.lists[x].system for x in sorted(a.lists)] for a in k.articles]

    assert letters(later) != letters(key) and letters(other) != letters(key)
    write_sheet(text, key, tmp_path / "demo.md", tmp_path / "demo.key.json")
    assert Key.load(tmp_path / "demo.key.json") == key
    assert (tmp_path / "demo.md").read_text(encoding="utf-8") == text
    with pytest.raises(UsageError, match="exists"):
        write_sheet(text, key, tmp_path / "demo.md", tmp_path / "other.key.json")
    write_sheet(text, key, tmp_path / "demo.md", tmp_path / "demo.key.json", force=True)


def test_sheet_shows_the_start_of_the_prose_and_says_how_long_it_is():
    text, key = make_sheet(n=12)
    long = next(a for a in key.articles if a.text_chars > 600)
    block = text.split(f"\n## {long.id}\n")[1].split("\n## ")[0]
    assert f"the first 600 of {long.text_chars:,} characters; code blocks not shown" in block
    excerpt = block.split("```text\n")[1].split("\n```")[0]
    assert len(excerpt) <= 602 and excerpt.endswith(" …") and "func main" not in excerpt


def test_sheet_fences_text_that_holds_backticks():
    articles = {"a": Article("a", "标题", "", "用 ```` 四个反引号 和 `code` 说明。")}
    text, _ = build_sheet(articles, {"ours": {"a": ["x"]}}, 1, 0, "demo", {})
    assert "`````text\n" in text and text.count("`````") == 2


def test_sheet_refuses_what_it_cannot_draw():
    articles = make_articles(3)
    lists = make_lists(articles)
    with pytest.raises(UsageError, match="cannot draw 4 articles from 3"):
        build_sheet(articles, lists, 4, 0, "demo", {})
    del lists["jieba"]["secret-id-001"]  # only articles every system tagged are drawn
    _, key = build_sheet(articles, lists, 2, 0, "demo", {})
    assert "secret-id-001" not in {a.article for a in key.articles}
    with pytest.raises(UsageError, match="cannot draw 3 articles from 2"):
        build_sheet(articles, lists, 3, 0, "demo", {})
    lists["ours"]["elsewhere"] = ["x"]
    with pytest.raises(UsageError, match="article 'elsewhere' is not in the data set"):
        build_sheet(articles, lists, 2, 0, "demo", {})


def test_dump_lists_reads_a_bench_quality_dump():
    dump = {"sets": {"demo": {"ids": ["a", "b"], "methods": {
        "hybrid": {"tags": [["x"], []]}, "tfidf_lr": {"proba": [[1.0]]}}}}}
    assert dump_lists(dump, "demo", "hybrid") == {"a": ["x"], "b": []}
    with pytest.raises(UsageError, match="'tags' for set 'demo'"):
        dump_lists(dump, "demo", "tfidf_lr")
    with pytest.raises(UsageError, match="no 'other'"):
        dump_lists(dump, "other", "hybrid")


def test_scores_per_system_from_a_filled_sheet(tmp_path):
    _, key = make_sheet()
    lines = fill(key, reject={"调度": "GENERIC", "策略": "GENERIC", "资源": "FRAGMENT",
                              "Kubernetes": "UNSUPPORTED"}, missing=["容器编排"])
    scores = {s.system: s for s in score(key, read_verdicts(write_lines(tmp_path / "v.jsonl",
                                                                        lines), key))}
    ours, jieba, author = scores["ours"], scores["jieba"], scores["author"]
    assert (ours.articles, ours.tags, ours.accepted, ours.clean_articles) == (8, 24, 16, 0)
    assert ours.reasons == {"FRAGMENT": 0, "GENERIC": 0, "UNSUPPORTED": 8, "DUPLICATE": 0,
                            "ODD": 0}
    assert author.accepted_share == 1 and author.clean_share == 1
    assert ours.mean_rating == 4 and ours.missing_per_article == 1
    articles = {a.id: a for a in key.articles}
    empty = sum(not next(x for x in a.lists.values() if x.system == "jieba").tags
                for a in articles.values())
    assert jieba.empty_lists == empty and jieba.tags == 5 * (8 - empty)
    assert jieba.accepted == 2 * (8 - empty) and jieba.clean_articles == 0
    long = [a for a in articles.values() if a.text_chars >= 300]
    assert ours.long_articles == len(long) and ours.tags_per_long_article == 3
    assert author.long_with_under_three == len(long)
    text = format_scores(list(scores.values()))
    assert "16 of 24 (67%)" in text and "8 of 8 (100%)" in text and "UNSUPPORTED" in text


def test_verdicts_forgive_only_unambiguous_slips(tmp_path):
    _, key = make_sheet()
    lines = fill(key, reject={"调度器": "ODD"})
    first = lines[0]
    first["id"] = int(first["id"])
    letter, shown = next((x, s) for x, s in key.articles[0].lists.items() if s.system == "ours")
    judged = first["lists"].pop(letter)
    judged["tags"][0]["tag"] = "kubernetes "  # case and spacing: only one tag fits
    judged["tags"][0]["verdict"] = "accept"
    judged["tags"][0]["reason"] = "null"
    judged["tags"][1]["reason"] = "odd"
    judged["tags"].reverse()
    judged["missing"] = None
    first["lists"][letter.lower()] = judged
    for a, line in zip(key.articles, lines, strict=True):
        for x, s in a.lists.items():
            if not s.tags:
                line["lists"][x]["tags"] = [{"tag": "(no tags)", "verdict": "REJECT",
                                             "reason": "ODD"}]
    verdicts = read_verdicts(write_lines(tmp_path / "v.jsonl", ["```json", *lines, "```", ""]),
                             key)
    ours = verdicts["1"][letter]
    assert [t.tag for t in ours.tags] == shown.tags and ours.missing == []
    assert [(t.accepted, t.reason) for t in ours.tags] == [(True, None), (False, "ODD"),
                                                           (True, None)]


def test_verdicts_report_every_problem_at_once(tmp_path):
    _, key = make_sheet()
    lines = fill(key)
    a0, a1 = key.articles[0], key.articles[1]
    x0 = next(x for x, s in a0.lists.items() if s.tags)
    lines[0]["lists"][x0]["tags"][0]["verdict"] = "MAYBE"
    lines[0]["lists"][x0]["tags"][1].update(verdict="REJECT", reason="BORING")
    lines[0]["lists"][x0]["tags"].pop()
    lines[0]["lists"][x0]["tags"].append({"tag": "新标签", "verdict": "ACCEPT", "reason": None})
    lines[0]["lists"][x0]["rating"] = 6
    lines[0]["lists"][x0]["missing"] = ["a", "b", "c"]
    x1 = sorted(a1.lists)[-1]
    del lines[1]["lists"][x1]
    lines[1]["lists"]["Z"] = lines[1]["lists"][sorted(a1.lists)[0]]
    lines[2]["lists"][sorted(key.articles[2].lists)[0]]["tags"].insert(
        0, {"tag": "x", "verdict": "ACCEPT", "reason": "GENERIC"})
    del lines[3]
    lines.append(lines[4])
    lines.append("{not json")
    with pytest.raises(VerdictError) as caught:
        read_verdicts(write_lines(tmp_path / "v.jsonl", lines), key)
    message = str(caught.value)
    for expected in ("verdict 'MAYBE' is neither ACCEPT nor REJECT",
                     "rejected with reason 'BORING'", f"tag {a0.lists[x0].tags[-1]!r} not judged",
                     "tag '新标签' is not on the sheet", "rating 6 is not a whole number",
                     "3 missing tags", f"article {a1.id}, list {x1}: not judged",
                     f"article {a1.id}: no list 'Z'", "accepted, yet with reason 'GENERIC'",
                     f"no line for article {key.articles[3].id}", "is judged again",
                     "not JSON"):
        assert expected in message


def test_judge_script_makes_and_scores_a_sheet(tmp_path):
    articles = make_articles()
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "demo.jsonl", [{"id": a.id, "title": a.title, "content": a.content,
                                       "tags": a.tags} for a in articles.values()])
    lists = make_lists(articles)
    dump = {"sets": {"demo": {"ids": list(articles), "methods": {
        "hybrid": {"tags": list(lists["ours"].values())},
        "jieba_extract_tags": {"tags": list(lists["jieba"].values())}}}}}
    (tmp_path / "dump.json").write_text(json.dumps(dump, ensure_ascii=False), encoding="utf-8")

    def judge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "judge.py"), *args],
                              capture_output=True, text=True, cwd=tmp_path, check=False)

    made = judge("sheet", "dump.json", "--set", "demo", "--n", "6", "--out", "s/demo.md",
                 "--before", "dump.json", "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    key = Key.load(tmp_path / "s" / "demo.key.json")
    assert key.systems == ["ours", "jieba", "author", "before"] and len(key.articles) == 6
    assert "- D: " in (tmp_path / "s" / "demo.md").read_text(encoding="utf-8")
    write_lines(tmp_path / "v.jsonl", fill(key, reject={"Kubernetes": "UNSUPPORTED"}))
    scored = judge("score", "s/demo.key.json", "v.jsonl")
    assert scored.returncode == 0, scored.stderr
    assert "12 of 18 (67%)" in scored.stdout and "before" in scored.stdout
    as_json = json.loads(judge("score", "s/demo.key.json", "v.jsonl", "--json").stdout)
    assert {s["system"]: s["accepted"] for s in as_json}["author"] == 12
    write_lines(tmp_path / "v.jsonl", fill(key)[1:])
    failed = judge("score", "s/demo.key.json", "v.jsonl")
    assert failed.returncode == 2 and "no line for article" in failed.stderr
