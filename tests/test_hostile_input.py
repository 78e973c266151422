"""`hybrid tag-file` (1 and 2 workers) and `hybrid predict` against generated hostile input:
lone surrogates, bytes that are not UTF-8, nesting past the recursion limit, integers past
the digit limit, broken JSON, 5 MB of HTML, and wrong types in every field.

The promise: no traceback, exit 0 or 3, one output line per input line in order (an error
line for a record that cannot be tagged), and never a category outside the taxonomy.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hybrid.cli import main
from hybrid.errors import Exit
from hybrid.learn.artifacts import read_manifest

RECORDS = 1050  # records asked of hypothesis, through each path
AT_LEAST = 1000  # it may stop a few short (an example it already ran is not run again)
FIELDS = ["id", "title", "description", "content", "categories", "tags"]
HUGE_HTML = ("<div><p>Kubernetes 集群网络策略与 Pod 调度 <b>Redis</b></p><table><tr><td>"
             "持久化</td></tr></table></div>\n" * 50_000).encode()  # 5 MB

# text with anything in it: lone surrogates included (they reach us as JSON escapes)
text = st.text(st.characters(exclude_categories=()), max_size=80)
scalar = st.one_of(text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(text, inner, max_size=3), max_leaves=8)


@st.composite
def line(draw) -> bytes:
    """One line of a JSONL file, from harmless to hostile."""
    kind = draw(st.sampled_from(["article", "article", "article", "typed", "broken", "deep",
                                 "huge-number", "invalid-utf8", "not-an-object"]))
    if kind == "article":
        record = {"id": draw(text), "title": draw(text), "content": draw(text),
                  "description": draw(st.one_of(text, st.none()))}
        return json.dumps(record).encode()
    if kind == "typed":  # every field any type
        record = {name: draw(value) for name in draw(st.lists(st.sampled_from(FIELDS),
                                                              unique=True))}
        return json.dumps(record).encode()
    if kind == "broken":
        return draw(st.binary(min_size=1, max_size=60)).replace(b"\n", b" ").replace(b"\r", b" ")
    if kind == "deep":
        depth = draw(st.sampled_from([2_000, 100_000]))
        return b'{"id": "deep", "content": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "huge-number":
        return b'{"id": ' + b"9" * 5000 + b', "title": "big"}'
    if kind == "invalid-utf8":
        return b'{"id": "bad\xff\xfe-' + draw(st.binary(max_size=4)).replace(b'"', b"") \
            .replace(b"\\", b"").replace(b"\n", b"").replace(b"\r", b"") \
            + b'", "title": "x\xc3", "content": "y"}'
    return json.dumps(draw(st.one_of(scalar, st.lists(scalar, max_size=3)))).encode()


def huge_html(article_id: str) -> bytes:
    return json.dumps({"id": article_id, "title": "a big page",
                       "content": HUGE_HTML.decode()}, ensure_ascii=False).encode()


def records_in(lines: list[bytes]) -> list[bytes]:
    """The lines that are records: a reader skips the blank ones."""
    return [raw for raw in lines if raw.decode("utf-8", "surrogateescape").strip()]


def check_rows(rows: list[dict], count: int, authorized: set[str]) -> None:
    assert len(rows) == count
    for row in rows:
        assert isinstance(row.get("id"), str)
        assert ("error" in row) != ("categories" in row), row
        if "categories" in row:
            assert set(row["categories"]) <= authorized and 1 <= len(row["categories"]) <= 3
            assert all(isinstance(t, str) for t in row["tags"])


@pytest.fixture(scope="module")
def authorized(sample_model_dir) -> set[str]:
    return set(read_manifest(sample_model_dir)["categories"])


@pytest.fixture(scope="module")
def hostile_lines() -> list[bytes]:
    """1,050 lines hypothesis generates (its edge cases first), and two 5 MB pages."""
    lines: list[bytes] = []

    @settings(max_examples=RECORDS, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(line())
    def collect(raw: bytes) -> None:
        lines.append(raw)

    collect()
    return [huge_html("html-1"), *lines, huge_html("html-2")]


@pytest.fixture(scope="module")
def tagged(hostile_lines, sample_model_dir, cache_dir, tmp_path_factory) -> list[dict]:
    """Every line through `tag-file`, with one worker and with two: the same output."""
    work = tmp_path_factory.mktemp("hostile")
    infile = work / "hostile.jsonl"
    infile.write_bytes(b"\n".join(hostile_lines) + b"\n")
    outputs = []
    for workers in ("1", "2"):
        out = work / f"out-{workers}.jsonl"
        result = CliRunner().invoke(main, [
            "--quiet", "--cache-dir", str(cache_dir), "tag-file", str(infile), str(out),
            "--model", str(sample_model_dir), "--workers", workers, "--batch-size", "32"],
            env={"MONGODB_URI": ""})
        assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        assert "Traceback" not in result.output
        # split on newlines only: a JSON string may hold U+2028 and its kin unescaped
        outputs.append([json.loads(raw) for raw in
                        out.read_text(encoding="utf-8").split("\n")[:-1]])
    assert outputs[0] == outputs[1]  # the pool changes nothing
    return outputs[0]


def test_tag_file_accounts_for_every_record(hostile_lines, tagged, authorized):
    records = records_in(hostile_lines)
    assert len(records) >= AT_LEAST
    check_rows(tagged, len(records), authorized)
    kinds = {"error": sum("error" in r for r in tagged), "tagged": sum("error" not in r
                                                                      for r in tagged)}
    assert kinds["error"] > 100 and kinds["tagged"] > 100, kinds  # both paths were exercised
    assert {r["id"] for r in tagged} >= {"html-1", "html-2"}


def test_predict_gives_each_record_the_same_answer_or_a_clear_error(
        hostile_lines, tagged, sample_model_dir, cache_dir, tmp_path):
    one = tmp_path / "one.json"
    for raw, expected in zip(records_in(hostile_lines), tagged, strict=True):
        one.write_bytes(raw)
        result = CliRunner().invoke(main, ["--quiet", "--cache-dir", str(cache_dir), "predict",
                                           str(one), "--model", str(sample_model_dir)],
                                    env={"MONGODB_URI": ""})
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        assert "Traceback" not in result.output
        if "error" in expected:
            assert result.exit_code in (Exit.USAGE, Exit.PARTIAL), result.output
            assert result.output.startswith("error: ")
        else:
            assert result.exit_code == Exit.OK, result.output
            assert json.loads(result.stdout) == {k: expected[k] for k in ("categories", "tags")}


def test_explain_with_a_lone_surrogate_id(run, sample_model_dir, tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"id": "a\\ud800", "title": "Redis 持久化"}', encoding="utf-8")
    result = run("predict", str(path), "--model", str(sample_model_dir), "--explain")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "a\ud800"


def test_a_file_of_invalid_utf8_reads_as_stdin_does(run, sample_model_dir, tmp_path):
    raw = b'{"id": "u", "title": "Redis \xff \xe6\x8c\x81\xe4\xb9\x85\xe5\x8c\x96"}'
    path = tmp_path / "a.json"
    path.write_bytes(raw)
    from_file = run("predict", str(path), "--model", str(sample_model_dir))
    from_stdin = CliRunner().invoke(main, ["--quiet", "predict", "--model",
                                           str(sample_model_dir)], input=raw)
    assert from_file.exit_code == from_stdin.exit_code == 0, from_file.output
    assert from_file.stdout == from_stdin.stdout
