"""Shared pieces of the reliability suite: trial counts, the figures file, and store/target invariants.

``CCLM_RELIABILITY_FULL=1`` switches to the full trial counts (``scripts/reliability.py --full``), and
``CCLM_RELIABILITY_RESULTS=<file>`` makes every case append one JSON line ``{"case", "group", "tried",
"ok", "rerun"}`` to that file, from which the script builds RELIABILITY.md's table. The figures are counted
as the case runs (``tally``), so a failing case reports what it tried and what passed, never constants.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ENV_FULL = "CCLM_RELIABILITY_FULL"
ENV_RESULTS = "CCLM_RELIABILITY_RESULTS"


def full_run() -> bool:
    return os.environ.get(ENV_FULL, "") == "1"


def trials(ci: int, full: int) -> int:
    """How many trials a case runs: few in CI, many under ``scripts/reliability.py --full``."""
    return full if full_run() else ci


class Tally:
    """One case's figures, counted as it runs: ``tried`` when a trial starts, ``ok`` when it passed."""

    def __init__(self, group: str, case: str, rerun: str) -> None:
        self.group, self.case, self.rerun = group, case, rerun
        self.tried = self.ok = 0

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        self.tried += 1
        yield
        self.ok += 1


@pytest.fixture
def tally() -> Iterator[Callable[[str, str, str], Tally]]:
    """``tally(group, case, rerun)`` starts a case, recorded when the test ends, whether it passed or not."""
    started: list[Tally] = []

    def start(group: str, case: str, rerun: str) -> Tally:
        started.append(Tally(group, case, rerun))
        return started[-1]

    yield start
    for case in started:
        record(case.group, case.case, case.tried, case.ok, case.rerun)


def record(group: str, case: str, tried: int, ok: int, rerun: str) -> None:
    """Append one case's figures to the results file, when one is asked for."""
    target = os.environ.get(ENV_RESULTS)
    if not target:
        return
    line = {"group": group, "case": case, "tried": tried, "ok": ok, "rerun": rerun}
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here starts servers or child processes: the whole folder is marked ``network``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.network)
