"""Keep TensorFlow's native start-up log lines off the terminal.

TensorFlow 2.21 logs through absl from C++, straight to file descriptor 2 and before any Python setting
can reach it: ``I0000 ... cudart_stub.cc:31] Could not find cuda drivers``, the oneDNN note, and on a
CPU-only machine ``E0000 ... failed call to cuInit``. ``TF_CPP_MIN_LOG_LEVEL`` no longer silences them. So
the commands that build models relay stderr through a thread that drops exactly those lines (absl's
format at levels I and W, and E lines about CUDA) and passes everything else on as it comes, ``\\r``
progress updates included. ``CCLM_SHELF_NATIVE_LOGS=1`` keeps them.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

_ABSL = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CUDA = re.compile(rb"cuda|cuInit|GPU", re.IGNORECASE)
_started = False


def is_noise(line: bytes) -> bool:
    """Whether one stderr line is TensorFlow's native start-up chatter."""
    if line.startswith(_ABSL_PREAMBLE):
        return True
    match = _ABSL.match(line)
    if match is None:
        return False
    return match[1] in (b"I", b"W") or (match[1] == b"E" and _CUDA.search(line) is not None)


def _maybe_noise(partial: bytes) -> bool:
    """Whether an unfinished line could still turn out to be noise (then it waits for its end)."""
    return bool(re.match(rb"^[IWEF]\d{0,4}( |$)", partial)) or _ABSL_PREAMBLE.startswith(partial[:80])


def quiet_native_logs() -> None:
    """From now until the process ends, drop TensorFlow's native log lines from stderr (once per process)."""
    global _started
    from shelf import constants

    if _started or os.environ.get(constants.ENV_NATIVE_LOGS) == "1":
        return
    _started = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_relay, args=(read_end, terminal), name="cclm-shelf-stderr", daemon=True)
    pump.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the relay drains it and stops
        pump.join(timeout=5)

    atexit.register(restore)


def _relay(read_end: int, terminal: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        pieces = re.split(rb"(?<=[\r\n])", pending)
        pending = pieces.pop()  # after the last \r or \n: unfinished
        out = b"".join(p for p in pieces if not is_noise(p))
        if pending and not _maybe_noise(pending):
            out, pending = out + pending, b""
        if out:
            os.write(terminal, out)
    if pending and not is_noise(pending):
        os.write(terminal, pending)
    os.close(read_end)
