"""`serving` must run without torch: importing the app (and the CLI) never loads it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_app_does_not_import_torch() -> None:
    code = (
        "import sys, serving.app, serving.cli; "
        "serving.app.create_app; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr or "torch was imported"
