"""A manifest's ``framework`` specifiers (``tensorflow>=2.16``, ``keras>=3``) checked against this machine.

Install warns (the files are only copied, and may be used elsewhere); compose refuses with a hint (the
models are about to be loaded here). Specifiers are read with ``packaging``, as pip reads them; installed
versions come from the distributions' metadata. ``cclm-core`` ships inside ``cclm-shelf``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from shelf import constants
from shelf.errors import ConfigError

_DISTRIBUTION = {"cclm-core": "cclm-shelf", "cclm_core": "cclm-shelf"}


def installed_version(name: str) -> str | None:
    """The installed version of the distribution ``name``, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTION.get(name, name))
    except PackageNotFoundError:
        return None


def load_checks() -> None:
    """Import what ``problems`` uses (for a side thread to do while the main one waits on the network)."""
    import importlib.metadata  # noqa: F401

    import packaging.specifiers
    import packaging.version  # noqa: F401


def problems(framework: Mapping[str, str], label: str) -> list[str]:
    """One line per specifier this machine does not meet (or that cannot be read), naming ``label``."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    found = []
    for name, text in sorted(framework.items()):
        try:
            wanted = SpecifierSet(text)
        except InvalidSpecifier:
            found.append(f"{label} declares {name} {text!r}, which is not a version specifier")
            continue
        have = installed_version(name)
        if have is None:
            found.append(f"{label} needs {name}{text}, which is not installed")
            continue
        try:
            ok = wanted.contains(Version(have), prereleases=True)
        except InvalidVersion:
            ok = True  # a local build with an odd version string: nothing to compare, nothing to claim
        if not ok:
            found.append(f"{label} needs {name}{text}, but {name} {have} is installed")
    return found


def manifest_problems(manifest: bytes | None, label: str, verdicts: Path | None = None) -> list[str]:
    """``problems`` for the ``framework`` of a manifest's bytes (none when it has no such field).

    With ``verdicts`` (a folder of the cache), specifiers once found met are not checked again while the
    installed distributions stay as they were (see ``_met_marker``): a warm install then imports neither
    ``importlib.metadata`` nor ``packaging``.
    """
    if not manifest:
        return []
    try:
        framework = json.loads(manifest).get("framework") or {}
    except (ValueError, AttributeError):
        return []  # the manifest was validated when it was read: nothing more to say here
    if not isinstance(framework, dict) or not framework:
        return []
    marker = _met_marker(verdicts, framework) if verdicts is not None else None
    if marker is not None and marker.is_file():
        return []
    found = problems(framework, label)
    if marker is not None and not found:
        with contextlib.suppress(OSError):  # a read-only cache only costs the check next time
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return found


def _met_marker(verdicts: Path, framework: Mapping[str, str]) -> Path:
    """The file saying "these specifiers were met by the distributions installed then".

    Named by the specifiers, the interpreter and every import path with its stat: installing, upgrading
    or removing a distribution adds or removes its ``<name>-<version>.dist-info`` folder, which changes
    the stat of the folder holding it, so the next install checks again.
    """
    digest = hashlib.sha256(json.dumps(framework, sort_keys=True).encode())
    digest.update(sys.executable.encode())
    for entry in sys.path:
        digest.update(b"\0" + os.fsencode(entry))
        with contextlib.suppress(OSError):
            found = os.stat(entry or ".")
            digest.update(b"%d %d %d" % (found.st_dev, found.st_ino, found.st_mtime_ns))
    return verdicts / digest.hexdigest()


def installed_manifest(folder: Path) -> bytes | None:
    """The manifest an install wrote for the component holding ``folder`` (its item folder or itself)."""
    for candidate in (folder, folder.parent):
        path = candidate / constants.MANIFEST_FILE
        if path.is_file():
            return path.read_bytes()
    return None


def require(manifests: Mapping[str, bytes | None]) -> None:
    """ConfigError naming every unmet specifier of the given manifests (by label), with what to do."""
    found = [line for label, data in sorted(manifests.items()) for line in manifest_problems(data, label)]
    if found:
        raise ConfigError(
            "; ".join(found),
            hint="install the versions named (e.g. pip install 'tensorflow>=2.16') or pick other components",
        )
