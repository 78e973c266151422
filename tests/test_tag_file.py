"""hybrid.batch.tag_file (`hybrid tag-file`): streaming, in order, whatever a record holds."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from helpers import pool_workers, records
from llm_stub import answer

from hybrid import data
from hybrid.batch.tag_file import ramped, tag_file
from hybrid.cli import main
from hybrid.errors import Exit


def test_tag_file_streams_and_survives_bad_records(run, sample_model_dir, tmp_path):
    infile, outfile = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = data.path("sample_unseen.jsonl").read_text(encoding="utf-8").splitlines()
    bad = ['{"id": "n1", "title": "t", "content": 12}', "{not json",
           '{"id": "n2", "title": "t", "content": ["a"]}',
           json.dumps({"id": "big", "title": "大文章", "content": "<p>" + "长" * 5_000_000})]
    infile.write_text("\n".join(good[:3] + bad + good[3:]) + "\n", encoding="utf-8")
    result = run("tag-file", str(infile), str(outfile), "--model", str(sample_model_dir),
                 "--batch-size", "4", "--json")
    assert result.exit_code == Exit.PARTIAL, result.output
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(good) + len(bad)
    assert [r["id"] for r in rows[:3]] == ["u001", "u002", "u003"]
    errors = {r["id"]: r["error"] for r in rows if "error" in r}
    assert set(errors) == {"n1", "n2", "line 5"} and "content" in errors["n1"]
    big = next(r for r in rows if r["id"] == "big")
    assert big["categories"] and "error" not in big
    assert json.loads(result.stdout)["failed"] == 3


def test_tag_file_with_worker_processes(run, sample_model_dir, tmp_path):
    outfile = tmp_path / "out.jsonl"
    result = run("tag-file", str(data.path("sample_unseen.jsonl")), str(outfile), "--model",
                 str(sample_model_dir), "--workers", "2", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"u00{i}" for i in range(1, 7)]


def test_tag_file_with_llm_fallback(tmp_path, stub, sample_model_dir):
    model_dir = sample_model_dir
    s = stub(lambda body, n: answer({"categories": ["黑客攻击", "数据库"], "tags": ["a"]}))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, [
        "-q", "--cache-dir", str(tmp_path), "tag-file", str(data.path("sample_unseen.jsonl")),
        str(out), "--model", str(model_dir), "--json", "--llm-mode", "fallback",
        "--llm-base-url", s.url, "--llm-model", "stub", "--llm-threshold", "1.01",
        "--llm-unchecked"])  # no `hybrid llm check` of the stub (tests/test_llm_check.py)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["llm"]["unchecked"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["llm"]["applied"] == len(rows) == summary["llm"]["calls"]
    assert summary["llm"]["blocked"] == len(rows)
    assert all(r["categories"] == ["数据库"] and r["source"] == "llm" for r in rows)


def test_a_broken_line_with_two_workers_is_one_error_line(run, sample_model_dir, tmp_path):
    """A record that did not parse crosses to a worker as an error: it must pickle."""
    infile, outfile = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = data.path("sample_unseen.jsonl").read_text(encoding="utf-8").splitlines()
    infile.write_text("\n".join([*good[:3], "{not json", *good[3:]]) + "\n", encoding="utf-8")
    result = run("tag-file", str(infile), str(outfile), "--model", str(sample_model_dir),
                 "--workers", "2", "--batch-size", "2")
    assert result.exit_code == Exit.PARTIAL, result.output
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["u001", "u002", "u003", "line 4", "u004", "u005", "u006"]
    assert "error" in rows[3] and all("categories" in r for i, r in enumerate(rows) if i != 3)


def test_a_worker_killed_mid_file_loses_no_article(sample_model_dir, cache_dir, tmp_path):
    """The pool breaks; a new one takes the batches in flight, and the batch that was being
    awaited is redone article by article: every line comes out, tagged, in order."""
    infile, outfile = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({**r, "id": f"{r['id']}-{k}", "title": f"{r['title']} {k}"},
                        ensure_ascii=False)
             for k in range(6) for r in records(110)]
    infile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybrid.cli", "--quiet", "--cache-dir", str(tmp_path / "cache"),
         "tag-file", str(infile), str(outfile), "--model", str(sample_model_dir), "--workers",
         "2", "--batch-size", "8", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 120
        while not _being_written(outfile):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        workers = pool_workers(proc.pid)
        workers[0].kill()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "event=worker_died" in stderr
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [json.loads(line)["id"] for line in lines]
    assert all("categories" in r for r in rows)
    assert json.loads(stdout.splitlines()[-1])["failed"] == 0


def _being_written(outfile) -> bool:
    """Lines are in the output's temporary file (it takes the output's place at the end)."""
    for part in outfile.parent.glob(f".{outfile.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_size:
                return True
    return False


def test_tag_file_never_writes_over_its_input(run, sample_model_dir, tmp_path):
    infile = tmp_path / "x.jsonl"
    infile.write_bytes(data.path("sample_unseen.jsonl").read_bytes())
    (tmp_path / "link.jsonl").symlink_to(infile)
    for out in (infile, tmp_path / "link.jsonl"):
        result = run("tag-file", str(infile), str(out), "--model", str(sample_model_dir))
        assert result.exit_code == Exit.USAGE, result.output
        assert f"the output {out} is the input {infile}" in result.output
    assert infile.read_bytes() == data.path("sample_unseen.jsonl").read_bytes()


def test_an_interrupted_tag_file_leaves_the_old_output_as_it_was(sample_model_dir, config,
                                                                 tmp_path):
    outfile = tmp_path / "out.jsonl"
    outfile.write_text("yesterday's\n", encoding="utf-8")

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tag_file(data.path("sample_unseen.jsonl"), outfile, sample_model_dir, config,
                 batch_size=2, progress=interrupt)
    assert outfile.read_text(encoding="utf-8") == "yesterday's\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_dash_writes_the_lines_to_stdout_and_the_summary_to_stderr(sample_model_dir,
                                                                   cache_dir, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--quiet", "--cache-dir", str(cache_dir), "tag-file",
                                       str(data.path("sample_unseen.jsonl")), "-", "--model",
                                       str(sample_model_dir)], env={"MONGODB_URI": ""})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [f"u00{i}" for i in range(1, 7)]
    assert "tagged 6 articles" in result.stderr and not list(tmp_path.iterdir())


def test_batches_start_small_so_the_first_article_comes_early():
    """A first batch of 64 long posts is seconds of work before anything is written."""
    assert [len(b) for b in ramped(range(200), 64)] == [4, 8, 16, 32, 64, 64, 12]
    assert [len(b) for b in ramped(range(5), 2)] == [2, 2, 1]
    assert [x for b in ramped(range(200), 64) for x in b] == list(range(200))
    assert list(ramped([], 64)) == []
