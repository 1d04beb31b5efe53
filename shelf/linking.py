"""How installed files point at the blob store: the link modes, chosen as uv chooses them.

    hardlink  (default) the installed file is the blob itself: no extra space. An edit in place reaches the
              store and every target linking the same blob; the next install anywhere notices (the blob's
              mtime moved), re-hashes it, fetches it again and repairs the target it runs on.
    copy      a private read-only copy per target: an edit stays in that target.
    symlink   a symbolic link to the blob's path: no extra space, visible as a link; edits reach the store
              as with hardlinks, and are caught the same way.

The mode comes from ``--link-mode``, else ``CCLM_SHELF_LINK_MODE``, else the project file's ``link-mode``;
with none of them, installed components keep the mode they have and new ones are hardlinked. A hardlink
the file system refuses (another device, no link support) becomes a copy.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from shelf import constants
from shelf.errors import ConfigError

HARDLINK, COPY, SYMLINK = "hardlink", "copy", "symlink"
LINK_MODES = (HARDLINK, COPY, SYMLINK)
DEFAULT_LINK_MODE = HARDLINK
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def check_link_mode(value: str, where: str) -> str:
    """``value`` if it names a link mode, else a ConfigError naming where it was set."""
    if value not in LINK_MODES:
        raise ConfigError(
            f"{where}: unknown link mode {value!r}",
            hint=f"use one of {', '.join(LINK_MODES)}",
        )
    return value


def choose_link_mode(explicit: str | None = None, project_setting: str | None = None) -> str | None:
    """The link mode asked for: the option, else the environment, else the project file; None if none.

    With none, an install keeps each installed component in the mode it has and links new ones with
    ``DEFAULT_LINK_MODE``.
    """
    if explicit:
        return check_link_mode(explicit, "--link-mode")
    from_env = constants.link_mode()
    if from_env:
        return check_link_mode(from_env, constants.ENV_LINK_MODE)
    if project_setting:
        return check_link_mode(project_setting, "the project file's link-mode")
    return None


def place(source: Path, dest: Path, mode: str) -> str:
    """Create ``dest`` (which must not exist) from the blob ``source``; returns how it was placed."""
    if mode == SYMLINK:
        os.symlink(source.resolve(), dest)
        return SYMLINK
    if mode == HARDLINK:
        try:
            os.link(source, dest)
            return HARDLINK
        except OSError:
            pass  # another file system, or links not allowed there: a private copy is the fallback
    shutil.copyfile(source, dest)
    os.chmod(dest, _READ_ONLY)
    return COPY
