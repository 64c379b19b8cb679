"""triage/ imports neither the web stack nor torch (STYLE rule 1)."""

from __future__ import annotations

import subprocess
import sys


def test_library_imports_no_web_framework_or_torch() -> None:
    code = (
        "import sys, triage.pipeline, triage.handoff, triage.runtime, triage.cli, triage.baseline;"
        "bad = {'fastapi', 'starlette', 'torch', 'transformers', 'serving', 'training'} & set(sys.modules);"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
