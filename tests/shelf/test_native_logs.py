"""TensorFlow's native start-up lines are dropped from stderr; everything else passes as it comes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shelf.native_logs import is_noise

ROOT = Path(__file__).resolve().parents[2]

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796225242.887877   10118 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1796225242.888209   10118 cudart_stub.cc:31] Could not find cuda drivers on your machine\n",
    b"E0000 00:00:1796225250.086554   10118 cuda_platform.cc:52] failed call to cuInit: CUDA error\n",
]


def test_tensorflow_start_up_lines_are_noise_and_ours_are_not():
    assert all(is_noise(line) for line in NOISE)
    assert not is_noise(b"error: the shelf x did not answer\n")
    assert not is_noise(b"E0000 00:00:1.0   1 op.cc:1] a real TensorFlow error about shapes\n")
    assert not is_noise(b"Installing 3 files\n")


def test_the_relay_drops_noise_and_keeps_order_and_carriage_returns():
    code = (
        "import os, sys\n"
        "from shelf.native_logs import quiet_native_logs\n"
        "quiet_native_logs()\n"
        f"for line in {NOISE!r}: os.write(2, line)\n"
        "os.write(2, b'progress 1/2\\rprogress 2/2\\r')\n"
        "print('said by python', file=sys.stderr)\n"
        "os.write(2, b'error: last words')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0
    assert done.stderr == b"progress 1/2\rprogress 2/2\rsaid by python\nerror: last words"
