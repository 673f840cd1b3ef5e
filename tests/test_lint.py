"""House rule: ruff clean, checked by CI before the tests, with the ruff that bin/test installs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_it_runs_ruff_in_ci_before_the_tests_with_a_pinned_ruff():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "ruff\" check ." in ci and ci.index("ruff\" check .") < ci.index("\nbin/test")
    assert re.search(r"^ruff==\d+\.\d+\.\d+", (ROOT / "requirements.txt").read_text(), re.M)


def test_it_is_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
