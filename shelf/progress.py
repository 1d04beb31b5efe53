"""Progress reporting for transfers: rich bars on a terminal, silence otherwise.

Transfers report bytes per object through the small ``Progress`` interface, so the LFS client does not know
how (or whether) progress is shown. Every implementation is safe to call from several threads.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID


class Progress(Protocol):
    """What a transfer tells whoever watches it."""

    def start(self, key: str, total: int, *, initial: int = 0, label: str | None = None) -> None: ...

    def advance(self, key: str, amount: int) -> None: ...

    def finish(self, key: str) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """Shows nothing; the default when nobody is watching."""

    def start(self, key: str, total: int, *, initial: int = 0, label: str | None = None) -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """One rich progress bar per object, drawn on stderr."""

    def __init__(self) -> None:
        # Imported here so that commands which never transfer anything start quickly.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as _RichBars

        self._bars = _RichBars(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._bars.start()

    def start(self, key: str, total: int, *, initial: int = 0, label: str | None = None) -> None:
        with self._lock:
            description = label or key[:12]
            self._tasks[key] = self._bars.add_task(description, total=total, completed=initial)

    def advance(self, key: str, amount: int) -> None:
        with self._lock:
            task = self._tasks.get(key)
        if task is not None:
            self._bars.advance(task, amount)

    def finish(self, key: str) -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            self._bars.remove_task(task)

    def close(self) -> None:
        self._bars.stop()


def make_progress(enabled: bool | None = None) -> Progress:
    """Rich bars when ``enabled`` (default: when stderr is a terminal), else ``NullProgress``."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return RichProgress() if enabled else NullProgress()


class Labelled:
    """Passes reports on, naming each object by a label (a file name) instead of its object id."""

    def __init__(self, inner: Progress, labels: dict[str, str]) -> None:
        self._inner = inner
        self._labels = labels

    def start(self, key: str, total: int, *, initial: int = 0, label: str | None = None) -> None:
        self._inner.start(key, total, initial=initial, label=label or self._labels.get(key))

    def advance(self, key: str, amount: int) -> None:
        self._inner.advance(key, amount)

    def finish(self, key: str) -> None:
        self._inner.finish(key)

    def close(self) -> None:
        self._inner.close()

    def label(self, key: str) -> str | None:
        """The object's file name (``component/item/path``), for messages too."""
        return self._labels.get(key)
