"""The code base is ruff-clean (configuration in pyproject.toml)."""

import subprocess
import sys

from .tools import ROOT


def test_ruff_reports_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
