"""hybrid.output: no output is written onto an input, and every output is whole or absent."""

from __future__ import annotations

import os

import pytest

from hybrid.errors import UsageError
from hybrid.output import open_output, output_dir, refuse_inputs, write_text


def test_an_output_that_is_an_input_by_any_name_is_refused(tmp_path):
    data = tmp_path / "x.jsonl"
    data.write_text("keep\n", encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(data)
    os.link(data, tmp_path / "hard.jsonl")
    (tmp_path / "sub").mkdir()
    for out in (data, tmp_path / "link.jsonl", tmp_path / "hard.jsonl",
                tmp_path / "sub" / ".." / "x.jsonl"):
        with pytest.raises(UsageError, match=f"the output {out} is the input {data}"):
            write_text(out, "new", inputs=[None, data])
    with pytest.raises(UsageError, match="inside the input folder"):
        refuse_inputs(tmp_path / "sub" / "r.html", [tmp_path / "sub"])
    assert data.read_text(encoding="utf-8") == "keep\n"
    refuse_inputs(tmp_path / "other.jsonl", [data])
    refuse_inputs("-", ["-"])  # stdout is no file


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), open_output(out) as fh:
        fh.write("half")
        assert out.read_text(encoding="utf-8") == "old\n"  # not in place before the end
        raise RuntimeError("killed")
    assert out.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_link_is_written_through_and_permissions_are_kept(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.csv"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    (tmp_path / "out.csv").symlink_to(target)
    write_text(tmp_path / "out.csv", "new")
    assert (tmp_path / "out.csv").is_symlink() and target.read_text(encoding="utf-8") == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    fresh = write_text(tmp_path / "a" / "b" / "new.json", "{}")  # folders made as needed
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_dash_is_stdout(capsys):
    with open_output("-") as fh:
        fh.write("line\n")
    assert capsys.readouterr().out == "line\n"


def test_a_folder_is_replaced_whole_through_a_link_and_leaves_no_debris(tmp_path):
    real = tmp_path / "real_model"
    real.mkdir()
    (real / "old.txt").write_text("old", encoding="utf-8")
    (tmp_path / "prod").symlink_to("real_model")
    with output_dir(tmp_path / "prod") as staging:
        (staging / "new.txt").write_text("new", encoding="utf-8")
    assert (tmp_path / "prod").is_symlink() and os.listdir(real) == ["new.txt"]
    with pytest.raises(RuntimeError), output_dir(tmp_path / "prod") as staging:
        (staging / "half.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("killed")
    assert os.listdir(real) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod", "real_model"]
