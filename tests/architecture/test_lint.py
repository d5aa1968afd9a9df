"""The whole tree passes the linter (ruff, configured in ruff.toml): no unused or undefined
names, no syntax errors anywhere, services and tools included."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_does_report_a_violation(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import os\n")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "ruff.toml"), str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1 and "F401" in result.stdout
