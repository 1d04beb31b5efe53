"""Names, defaults and environment variables, read in one place.

Environment variables are read when a function here is called, not at import, so tests and long-running
programs see the current environment.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "cclm-shelf"

# Environment variables.
ENV_CACHE_DIR = "CCLM_SHELF_CACHE_DIR"  # root of the blob store and metadata mirrors
ENV_HOME = "CCLM_SHELF_HOME"  # where the embedded default shelf lives
ENV_SHELF = "CCLM_SHELF_URL"  # the shelf used when none is configured or given
ENV_OFFLINE = "CCLM_SHELF_OFFLINE"  # "1": never touch the network
ENV_TOKEN = "CCLM_SHELF_TOKEN"  # bearer token for the LFS server
ENV_JOBS = "CCLM_SHELF_JOBS"  # parallel downloads and uploads
ENV_LINK_MODE = "CCLM_SHELF_LINK_MODE"  # how installed files point at the store: hardlink, copy, symlink
ENV_TRUSTED_KEYS = "CCLM_SHELF_TRUSTED_KEYS"  # public keys an install trusts, os.pathsep between paths
ENV_NATIVE_LOGS = "CCLM_SHELF_NATIVE_LOGS"  # "1": keep TensorFlow's native start-up log lines
ENV_INDEX_MAX_AGE = "CCLM_SHELF_INDEX_MAX_AGE"  # seconds a mirrored index (yank status) is trusted online

DEFAULT_TARGET = ".cclm"
DEFAULT_JOBS = 8
MAX_JOBS = 256
DEFAULT_INDEX_MAX_AGE = 300
PROJECT_FILE = "cclm-shelf.toml"
PYPROJECT_FILE = "pyproject.toml"
LOCK_FILE = "cclm-shelf.lock"
MANIFEST_FILE = "cclm-manifest.json"
INSTALL_RECORD = ".cclm-shelf-install.json"
FRAMEWORK_CHECKS_DIR = "framework-checks"  # in the cache: framework specifiers found met (shelf.frameworks)
TRASH_DIR = ".cclm-shelf-trash"  # in a target: what install/uninstall moved aside instead of deleting

# Transfer tuning.
CHUNK_SIZE = 1 << 20  # bytes read or written at a time while streaming
BATCH_SIZE = 100  # objects per LFS batch request (git-lfs sends at most 100; servers may refuse more)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
RETRY_ATTEMPTS = 5
RETRY_TOTAL_SECONDS = 120.0


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def cache_dir() -> Path:
    """The root of the content-addressed store and of the metadata mirrors."""
    explicit = _env(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))


def home_dir() -> Path:
    """Where the embedded default shelf (a bare git repository) is created on first use."""
    explicit = _env(ENV_HOME)
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_shelf_url() -> str | None:
    return _env(ENV_SHELF)


def offline() -> bool:
    return (_env(ENV_OFFLINE) or "").lower() in {"1", "true", "yes", "on"}


def token() -> str | None:
    return _env(ENV_TOKEN)


def jobs() -> int:
    """Parallel transfers: ``$CCLM_SHELF_JOBS`` (a whole number from 1 to 256), else 8."""
    return _whole_number(
        ENV_JOBS,
        DEFAULT_JOBS,
        "a number of parallel transfers",
        f"a whole number from 1 to {MAX_JOBS}, or unset it for {DEFAULT_JOBS}",
        allowed=range(1, MAX_JOBS + 1),
    )


def link_mode() -> str | None:
    return _env(ENV_LINK_MODE)


def index_max_age() -> int:
    """Seconds a mirrored index answers without a fetch when online (``$CCLM_SHELF_INDEX_MAX_AGE``, 300)."""
    return _whole_number(
        ENV_INDEX_MAX_AGE,
        DEFAULT_INDEX_MAX_AGE,
        "a number of seconds",
        "a whole number of seconds (0: always fetch), or unset it",
    )


def _whole_number(name: str, default: int, what: str, hint: str, allowed: range | None = None) -> int:
    """``$name`` as a whole number (in ``allowed`` when given), ``default`` when unset; else ConfigError."""
    raw = _env(name)
    if raw is None:
        return default
    if raw.isdigit() and (allowed is None or int(raw) in allowed):
        return int(raw)
    from shelf.errors import ConfigError

    raise ConfigError(f"{name}={raw!r} is not {what}", hint=f"set {name} to {hint}")
