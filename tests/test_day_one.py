"""docs/day-one.md on MongoDB, as its reader would follow it: the commands are read from the
page's shell blocks and run in order against a collection of unlabelled articles, with the
teacher an OpenAI-compatible server on 127.0.0.1 that answers from held labels. Zero-shot,
a round labelled by a person, the LLM teacher, training from the collection's labels, the
nightly run, and the LLM checked as its fallback."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

from click.testing import CliRunner
from helpers import fill_in, records

from hybrid import data
from hybrid.cli import main
from hybrid.learn.artifacts import read_manifest

DAY_ONE = Path(__file__).resolve().parents[1] / "docs" / "day-one.md"
CATEGORIES = 8  # in the sample taxonomy, the page's cats.json here
_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def commands() -> list[list[str]]:
    """The page's shell commands in order, each as its words (continuations joined,
    comments dropped)."""
    out = []
    for block in _BLOCK.findall(DAY_ONE.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(words)
    return out


def test_day_one_on_mongodb_as_documented(tmp_path, monkeypatch, oracle, store, mongo_config,
                                          sample_articles):
    store.import_records(records(104))  # the owner's articles: no category, no tag
    shutil.copy(data.path("sample_taxonomy.json"), tmp_path / "cats.json")
    monkeypatch.chdir(tmp_path)
    env = {"HYBRID_CONFIG": "/nonexistent/hybrid.toml", "HYBRID_CACHE_DIR": str(tmp_path / "c"),
           "HYBRID_MONGO_DB": mongo_config.mongo_db}
    page = commands()
    person = [w for w in page if "--review-out" in w or w[1:3] == ["review", "import"]]
    steps = iter(w for w in page if w not in person)
    teacher = {"https://api.openai.com/v1": oracle.url}

    def following(*expected: str) -> list[str]:
        """The page's next command of the main path, which must begin with `expected`; the
        `export`s before it set the reader's environment."""
        words = next(steps)
        while words[0] == "export":
            name, value = words[1].split("=", 1)
            env[name] = mongo_config.mongo_uri if name == "MONGODB_URI" else value
            words = next(steps)
        assert words[:len(expected)] == list(expected), words
        return words

    def hybrid(words: list[str], replace: dict[str, str] | None = None) -> str:
        """The command as written (placeholders in `replace` filled in); its output."""
        words = [(replace or {}).get(w, w) for w in words]
        result = CliRunner().invoke(main, ["--quiet", *words[1:]], env=env)
        assert result.exit_code == 0, (words, result.output)
        return result.stdout

    def nightly() -> dict:
        """`hybrid run --model models/site`, as the page runs it after step 2 and as the
        nightly job does."""
        assert "`hybrid run --model models/site`" in DAY_ONE.read_text(encoding="utf-8")
        return json.loads(hybrid(["hybrid", "run", "--model", "models/site", "--json"]))

    # 2. A zero-shot model, at once; `hybrid run` already works
    out = hybrid(following("hybrid", "train", "--label-source", "manual"))
    assert out.startswith("no labelled articles: a zero-shot model")
    assert "tags from the text of 104 articles" in out
    assert read_manifest("models/site")["zero_shot"]
    report = nightly()
    assert report["zero_shot"] and report["counts"]["tagged"] == 104

    # 3. The cost before any call
    dry_run = following("hybrid", "bootstrap")
    assert "--dry-run" in dry_run
    assert f"{10 * CATEGORIES} articles to label" in hybrid(dry_run, teacher)
    assert oracle.calls == 0

    # "A person as the teacher" labels the first round ...
    first, imported, again = person
    assert "16 articles to label → round.csv" in hybrid(first)
    assert fill_in(tmp_path / "round.csv", {a.id: a.categories for a in sample_articles}) == 16
    hybrid(imported)
    assert store.articles.count_documents({"hybrid.source": "manual"}) == 16
    assert "24 articles to label → round.csv" in hybrid(again)  # the next round's
    assert oracle.calls == 0

    # ... and the LLM teacher the rest of the budget, each label paid once
    out = hybrid(following("hybrid", "bootstrap"), teacher)
    # and the teacher check's negative controls, one for each of its first 16 labels
    assert oracle.calls == 10 * CATEGORIES - 16 + 16
    assert "round 3:" in out and "out-of-fold accuracy" in out
    taught = {d["_id"]: d["hybrid"]["teacher"] for d in store.articles.find(
        {"hybrid.teacher": {"$exists": True}})}
    assert len(taught) == 10 * CATEGORIES - 16

    # 4. Train from the collection's labels
    out = hybrid(following("hybrid", "train", "--label-source", "manual,llm"))
    manifest = read_manifest("models/site")
    usable = 16 + sum(1 for label in taught.values() if label["categories"])
    assert not manifest["zero_shot"] and manifest["training"]["articles"] == usable
    assert f"trained on {usable} articles" in out

    # 5. The nightly job: the teacher's labels show, the person's are never touched
    report = nightly()
    assert not report["zero_shot"] and report["counts"]["failed"] == 0
    for doc in store.articles.find():
        state = doc["hybrid"]
        if state.get("source") == "manual":
            gold = next(a for a in sample_articles if a.id == doc["_id"])
            assert doc["categories"] == gold.categories
        elif taught.get(doc["_id"], {}).get("categories"):
            assert state["source"] == "llm"
            assert doc["categories"] == taught[doc["_id"]]["categories"]
        else:
            assert state["source"] == "model" and doc["categories"] and doc["tags"]

    # ... and the LLM as its fallback, measured first on the people's labels: 16 are too few
    # to be sure of a gain, and the check says so
    check = following("hybrid", "llm", "check", "--model", "models/site", "--label-source",
                      "manual")
    out = hybrid(check, teacher)
    assert "on the 16 articles answered" in out and "recommendation: do not use" in out
    assert Path("models/site/llm_checks.json").is_file()
    assert next(steps, None) is None  # every command of the page ran
