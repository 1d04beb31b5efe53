"""The command line starts fast and without TensorFlow, and explains itself."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shelf.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_commands_and_exits_zero():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: cclm-shelf" in result.stdout
    assert "--offline" in result.stdout
    shelf_help = " ".join(result.stdout.split("--shelf URL", 1)[1].split("--cache-dir", 1)[0].split())
    assert "sparse+http(s)://" in shelf_help and "ssh://" in shelf_help  # every kind of shelf URL it takes


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from shelf.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.exit(3 if 'tensorflow' in sys.modules else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "cclm-shelf --help imported TensorFlow"


def test_unknown_command_is_a_usage_error():
    result = _run("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr
