"""Moved to ``shelf.remote`` (git.py, commits.py, mirror.py, url.py); this re-export lets code written
against the old name keep working for this round only. New code imports from ``shelf.remote``."""

from __future__ import annotations

from shelf.errors import PushRejected
from shelf.redaction import redact
from shelf.remote.commits import init_shelf
from shelf.remote.git import FALLBACK_EMAIL, FALLBACK_NAME, git_env, run_git
from shelf.remote.mirror import ShelfMirror, TreeEntry, mirror_path
from shelf.remote.url import is_local_url, normalise_url

__all__ = [
    "FALLBACK_EMAIL",
    "FALLBACK_NAME",
    "PushRejected",
    "ShelfMirror",
    "TreeEntry",
    "git_env",
    "init_shelf",
    "is_local_url",
    "mirror_path",
    "normalise_url",
    "redact",
    "run_git",
]
