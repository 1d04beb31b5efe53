"""Two pieces of work at once: one on a side thread, one on the caller's; used where publish overlaps.

Threads suffice: what overlaps is waiting for git and the network on one side and imports, reads and
hashing (which frees the GIL) on the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

S = TypeVar("S")
H = TypeVar("H")


def together(here: Callable[[], H], side: Callable[[], S], name: str) -> tuple[H, S]:
    """``here()`` on this thread while ``side()`` runs on a daemon thread; both results.

    An error here is raised once the side is done, whatever the side's outcome (callers put here the work
    whose problems the publisher should see first, and the work that writes files, so an interrupt still
    cleans up after it); an error of the side is raised once here succeeded. An interrupt (Ctrl-C) does not
    wait for the side: its thread ends with the process.
    """
    result: Future[S] = Future()

    def run() -> None:
        result.set_running_or_notify_cancel()
        try:
            result.set_result(side())
        except BaseException as exc:
            result.set_exception(exc)

    threading.Thread(target=run, name=f"cclm-shelf-{name}", daemon=True).start()
    try:
        mine = here()
    except Exception:
        result.exception()  # waits for the side; its own problem, if any, comes second
        raise
    return mine, result.result()
