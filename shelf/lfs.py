"""Moved to ``shelf.remote`` (lfs_protocol.py, lfs_http.py, lfs_local.py, transport.py); this re-export
lets code written against the old name keep working for this round only. New code imports from
``shelf.remote``."""

from __future__ import annotations

from shelf.remote.lfs_http import LfsClient, RetryPolicy
from shelf.remote.lfs_local import LocalLfsObjects
from shelf.remote.lfs_protocol import (
    Action,
    DownloadReport,
    LfsObject,
    ObjectAction,
    UploadReport,
    safe_url,
)
from shelf.remote.transport import Transport, endpoint_for, is_local, local_path, transport_for

__all__ = [
    "Action",
    "DownloadReport",
    "LfsClient",
    "LfsObject",
    "LocalLfsObjects",
    "ObjectAction",
    "RetryPolicy",
    "Transport",
    "UploadReport",
    "endpoint_for",
    "is_local",
    "local_path",
    "safe_url",
    "transport_for",
]
