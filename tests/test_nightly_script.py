"""scripts/nightly.sh reads HYBRID_ENV_FILE as data (KEY=value lines), never as shell code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NIGHTLY_SH = Path(__file__).resolve().parents[1] / "scripts" / "nightly.sh"
URI = "mongodb://tagger:pw@db:27017/?authSource=admin&replicaSet=rs0"


def nightly(tmp_path: Path, env_file: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the script with a fake `hybrid` that writes the environment it was given."""
    fake = tmp_path / "hybrid"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    "json.dump(dict(os.environ), open(sys.argv[0] + '.env', 'w'))\n")
    fake.chmod(0o755)
    (tmp_path / "nightly.env").write_text(env_file, encoding="utf-8")
    settings = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                "HYBRID_ENV_FILE": str(tmp_path / "nightly.env"), "HYBRID_BIN": str(fake),
                "HYBRID_LOG": str(tmp_path / "nightly.log"),
                "HYBRID_LOCK": str(tmp_path / "nightly.lock")}
    done = subprocess.run([str(NIGHTLY_SH), "models/prod"], env=settings, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    seen = tmp_path / "hybrid.env"
    return done, json.loads(seen.read_text()) if seen.exists() else {}


def test_values_are_taken_literally_and_nothing_runs(tmp_path):
    done, env = nightly(tmp_path, "\n".join([
        "# the job's settings",
        f"MONGODB_URI={URI}",
        'export HYBRID_CONFIG="/srv/hybrid/my settings.toml"',
        "  HYBRID_MONGO_DB='blog'  ",
        "",
        "   # an indented comment",
        f"HYBRID_EVIL=$(touch {tmp_path}/ran) `touch {tmp_path}/ran`; touch {tmp_path}/ran",
        "HYBRID_EMPTY=",
        "HYBRID_CRLF=written on Windows\r",
        "HYBRID_LAST=no newline at the end",
    ]))
    assert done.returncode == 0, done.stderr
    assert env["MONGODB_URI"] == URI
    assert env["HYBRID_CONFIG"] == "/srv/hybrid/my settings.toml"
    assert env["HYBRID_MONGO_DB"] == "blog" and env["HYBRID_EMPTY"] == ""
    assert env["HYBRID_EVIL"].startswith("$(touch ") and not (tmp_path / "ran").exists()
    assert env["HYBRID_CRLF"] == "written on Windows"
    assert env["HYBRID_LAST"] == "no newline at the end"


def test_a_line_that_is_no_setting_stops_before_the_job_naming_the_line_not_its_text(tmp_path):
    done, env = nightly(tmp_path, f"MONGODB_URI={URI}\nrm -rf secret-pw-123\n")
    assert done.returncode == 2 and env == {}
    assert "nightly.env:2: not a KEY=value line" in done.stderr
    assert "secret-pw-123" not in done.stderr and "pw@" not in done.stderr
