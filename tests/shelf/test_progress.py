"""Downloads report progress per file, named by component and path, with the right totals."""

from __future__ import annotations

import threading
from pathlib import Path

from shelf.api import Shelf
from shelf.progress import NullProgress, make_progress
from tests.support.shelves import BASE, MLM, VERSION, manifest_files, published_shelf


class Recorder:
    def __init__(self) -> None:
        self.started: dict[str, tuple[int, str | None]] = {}
        self.advanced: dict[str, int] = {}
        self.finished: set[str] = set()
        self._lock = threading.Lock()

    def start(self, key, total, *, initial=0, label=None):
        with self._lock:
            self.started[key] = (total, label)

    def advance(self, key, amount):
        with self._lock:
            self.advanced[key] = self.advanced.get(key, 0) + amount

    def finish(self, key):
        with self._lock:
            self.finished.add(key)

    def close(self):
        pass


def test_each_download_is_reported_under_its_file_name(tmp_path_factory, tmp_path: Path) -> None:
    shelf_path = published_shelf(tmp_path_factory, tmp_path / "shelf.git")
    recorder = Recorder()
    Shelf(str(shelf_path), progress=recorder).install(f"{MLM}@v{VERSION}", target=tmp_path / "target")
    expected = {}
    for name in (BASE, MLM):
        for rel, (sha, size) in manifest_files(tmp_path / "target", name).items():
            expected[sha] = (size, f"{name}/{rel}")
    assert recorder.started == expected
    assert recorder.advanced == {oid: size for oid, (size, _) in expected.items()}
    assert recorder.finished == set(expected)


def test_bars_only_on_a_terminal() -> None:
    assert isinstance(make_progress(False), NullProgress)
    assert isinstance(make_progress(None), NullProgress)  # pytest's stderr is not a terminal


def test_each_upload_is_reported_under_its_file_name(tmp_path_factory, tmp_path: Path) -> None:
    from shelf.publish import PackageInfo, publish
    from shelf.source import create_shelf
    from tests.support.shelves import saved_stack

    stack = saved_stack(tmp_path_factory)
    shelf = Shelf(create_shelf(tmp_path / "shelf.git"), cache_dir=tmp_path / "cache")
    recorder = Recorder()
    publish(stack.base, PackageInfo(BASE, VERSION), shelf.source(), shelf.store, bars=recorder)
    files = {
        p.relative_to(stack.base).as_posix(): p.stat().st_size for p in stack.base.rglob("*") if p.is_file()
    }
    assert sorted(label for _size, label in recorder.started.values()) == sorted(files)
    assert sorted(recorder.advanced.values()) == sorted(files.values())
    assert recorder.finished == set(recorder.started)
