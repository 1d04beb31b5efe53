"""Run the reliability suite and print (and file) its figures.

    python scripts/reliability.py                 # CI counts (a few trials per case), print the table
    python scripts/reliability.py --full          # full counts (>= 20 kills each, 16 parallel installs)
    python scripts/reliability.py --full --write  # ... and replace the figures section of RELIABILITY.md
    python scripts/reliability.py --only install  # one group (faults, crashes, concurrency, served, ...)

The trials are pytest tests in ``tests/reliability``; each case appends ``{"group", "case", "tried", "ok",
"rerun"}`` to the JSON-lines file named by ``CCLM_RELIABILITY_RESULTS``. A test that fails before it
records shows up as a row with ``ok`` 0, from pytest's JUnit report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "RELIABILITY.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
GROUPS = {
    "faults": ["tests/reliability/test_faults.py", "tests/reliability/test_publish_faults.py"],
    "crashes": ["tests/reliability/test_crashes.py"],
    "concurrency": ["tests/reliability/test_concurrency.py"],
    "hostile": ["tests/reliability/test_hostile.py", "tests/reliability/test_unsafe_models.py"],
    "auth": ["tests/reliability/test_auth.py"],
    "served": ["tests/reliability/test_served.py"],
    "install": ["tests/reliability/test_install_safety.py"],
}


@dataclass(frozen=True)
class Row:
    group: str
    case: str
    tried: int
    ok: int
    rerun: str


def run_suite(groups: list[str], full: bool, results: Path, junit: Path) -> tuple[int, float]:
    """Run pytest on the chosen groups; returns its exit code and the wall time."""
    paths = [path for group in groups for path in GROUPS[group]]
    env = {
        **os.environ,
        "CCLM_RELIABILITY_RESULTS": str(results),
        "CCLM_RELIABILITY_FULL": "1" if full else "",
    }
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    return code, time.monotonic() - started


def read_rows(results: Path, junit: Path) -> list[Row]:
    rows = []
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            rows.append(Row(**json.loads(line)))
    return rows + failed_rows(junit)


def failed_rows(junit: Path) -> list[Row]:
    """A row with nothing ending correctly for every test that failed or errored."""
    if not junit.exists():
        return []
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            rows.append(Row("FAILED", name, 1, 0, f"pytest '{name.replace('.', '/', 2)}'"))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| group | case | tried | ended correctly | rerun |", "|---|---|---:|---:|---|"]
    order = [*GROUPS, "FAILED"]
    for row in sorted(rows, key=lambda r: (order.index(r.group) if r.group in order else 99, r.case)):
        lines.append(f"| {row.group} | {row.case} | {row.tried} | {row.ok} | `{row.rerun}` |")
    tried, ok = sum(r.tried for r in rows), sum(r.ok for r in rows)
    lines.append(f"| **all** | {len(rows)} cases | **{tried}** | **{ok}** | |")
    return "\n".join(lines)


def write_report(text: str) -> None:
    """Replace the generated section of RELIABILITY.md (between the figure markers)."""
    current = REPORT.read_text(encoding="utf-8")
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    REPORT.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="full trial counts (slow)")
    parser.add_argument("--only", choices=sorted(GROUPS), action="append", help="run only these groups")
    parser.add_argument("--write", action="store_true", help="write the figures into RELIABILITY.md")
    args = parser.parse_args(argv)
    groups = args.only or list(GROUPS)
    with tempfile.TemporaryDirectory(prefix="cclm-reliability-") as tmp:
        results, junit = Path(tmp) / "results.jsonl", Path(tmp) / "junit.xml"
        code, seconds = run_suite(groups, args.full, results, junit)
        rows = read_rows(results, junit)
    mode = "full counts" if args.full else "CI counts"
    text = (
        f"Run: `python scripts/reliability.py{' --full' if args.full else ''}` ({mode}), "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {seconds:.0f} s wall on {os.cpu_count()} CPU(s); "
        f"pytest exit code {code}.\n\n{table(rows)}"
    )
    print(text)
    if args.write:
        write_report(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
