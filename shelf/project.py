"""The project file: which shelves a project reads, which components it requires, where they install.

A project declares its stack either in ``cclm-shelf.toml`` (top-level keys) or in the ``[tool.cclm-shelf]``
table of ``pyproject.toml``; ``cclm-shelf.toml`` wins when a folder has both::

    shelves = ["https://example.org/shelf.git", "../local-shelf"]   # priority order; or shelf = "..."
    requires = ["en_wiki_clm_1>=0.2", "en_wiki_ner_1"]
    target = ".cclm"
    link-mode = "copy"                                             # hardlink (default), copy or symlink

Editing (``add_requirements``, ``remove_requirement``) goes through tomlkit and rewrites only the
``requires`` array, so every other byte of the file (comments, other tables, formatting) stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_index.errors import RegistryIndexError
from registry_index.requirements import Requirement, parse_requirement
from shelf.constants import DEFAULT_TARGET, PROJECT_FILE, PYPROJECT_FILE
from shelf.errors import ConfigError, NotFoundError, translated
from shelf.fsutil import atomic_write
from shelf.remote.url import ShelfURL

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.lockfile import Lockfile
    from shelf.locking import Change

TOOL_KEY = "cclm-shelf"
_KNOWN_KEYS = frozenset({"shelves", "shelf", "requires", "target", "trusted-keys", "link-mode"})


@dataclass(frozen=True)
class Project:
    """A loaded project file; ``path`` is the file itself, ``root`` the folder holding it."""

    path: Path
    requirement_strings: tuple[str, ...] = ()
    shelves: tuple[str, ...] = ()
    target_setting: str = DEFAULT_TARGET
    trusted_key_settings: tuple[str, ...] = ()
    link_mode: str | None = None

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def trusted_keys(self) -> tuple[Path, ...]:
        """Public key files whose signatures installs accept (relative paths from the project root)."""
        return tuple((self.root / Path(p).expanduser()).resolve() for p in self.trusted_key_settings)

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return tuple(parse_requirement(text) for text in self.requirement_strings)

    @property
    def target(self) -> Path:
        """The install folder, relative paths taken from the project root."""
        return (self.root / self.target_setting).resolve()

    @property
    def in_pyproject(self) -> bool:
        return self.path.name == PYPROJECT_FILE

    def shelf_locations(self) -> tuple[str, ...]:
        """The shelves with relative local paths made absolute from the project root; URLs unchanged."""
        return tuple(_absolute_shelf(s, self.root) for s in self.shelves)

    # The workflow (shelf.locking): resolve and lock, keep the lock current, add and remove with rollback.

    @translated()
    def lock(self, shelf: Shelf, *, upgrade: bool | set[str] = False) -> Lockfile:
        """Resolve the requirements against ``shelf`` and write the lockfile beside the project file."""
        from shelf.locking import read_lock, resolve_and_lock

        return resolve_and_lock(shelf, self, previous=read_lock(self), upgrade=upgrade)[0]

    @translated()
    def ensure_lock(self, shelf: Shelf, *, frozen: bool = False) -> Lockfile:
        """The current lockfile, locking first when it is missing or stale (``frozen``: refuse instead)."""
        from shelf.locking import ensure_lock

        return ensure_lock(shelf, self, frozen=frozen)

    @translated()
    def add(self, requirements: Iterable[str], *, install: bool = True, **options: Any) -> Change:
        """Add requirements, lock and install (``shelf.locking.add``); on failure nothing changed."""
        from shelf.locking import add

        return add(self, requirements, install=install, **options)

    @translated()
    def remove(self, names: Iterable[str], *, install: bool = True, **options: Any) -> Change:
        """Remove requirements, re-lock, uninstall what is no longer pinned (``shelf.locking.remove``)."""
        from shelf.locking import remove

        return remove(self, names, install=install, **options)

    @classmethod
    def load(cls, path: Path) -> Project:
        """Load ``path`` (a project file or its folder); bad content is a ConfigError naming the file."""
        path = _project_file_in(Path(path)) if Path(path).is_dir() else Path(path)
        table = _read_table(path)
        if table is None:
            raise ConfigError(
                f"{path} has no [tool.{TOOL_KEY}] table",
                hint=f"add a [tool.{TOOL_KEY}] table or create {PROJECT_FILE}",
            )
        return _from_table(path.resolve(), table)


def start_project(folder: Path, shelf: str | None = None) -> Project:
    """Create ``cclm-shelf.toml`` in ``folder`` with no requirements (and ``shelf`` as its one shelf)."""
    lines = ["# The components this project stands on (see `cclm-shelf --help`).\n"]
    if shelf:
        lines.append(f"shelves = [{json.dumps(shelf)}]\n")  # a JSON string is a TOML basic string
    lines.append("requires = []\n")
    path = Path(folder) / PROJECT_FILE
    atomic_write(path, "".join(lines))
    return Project.load(path)


def find_project(start: Path) -> Project | None:
    """The nearest project at or above ``start`` (a folder or a file), or None when there is none."""
    start = Path(start).resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        own = candidate / PROJECT_FILE
        if own.is_file():
            return Project.load(own)
        pyproject = candidate / PYPROJECT_FILE
        if pyproject.is_file() and _read_table(pyproject) is not None:
            return Project.load(pyproject)
    return None


def _project_file_in(folder: Path) -> Path:
    if (folder / PROJECT_FILE).is_file():
        return folder / PROJECT_FILE
    if (folder / PYPROJECT_FILE).is_file():
        return folder / PYPROJECT_FILE
    raise NotFoundError(
        f"no {PROJECT_FILE} or {PYPROJECT_FILE} in {folder}", hint="run `cclm-shelf init` to create one"
    )


def _read_table(path: Path) -> dict[str, Any] | None:
    """Our settings from ``path``: the whole file for cclm-shelf.toml, [tool.cclm-shelf] otherwise."""
    import tomllib  # here, not at import: most commands never read a project file

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise NotFoundError(f"no project file at {path}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", hint="fix the syntax error it names") from e
    if path.name != PYPROJECT_FILE:
        return data
    table = data.get("tool", {}).get(TOOL_KEY)
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.{TOOL_KEY} must be a table", hint=f"write it as [tool.{TOOL_KEY}]")
    return table


def _from_table(path: Path, table: Mapping[str, Any]) -> Project:
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}",
            hint=f"the settings are {', '.join(sorted(_KNOWN_KEYS))}",
        )
    return Project(
        path=path,
        requirement_strings=_read_requires(path, table.get("requires", [])),
        shelves=_read_shelves(path, table),
        target_setting=_read_target(path, table.get("target", DEFAULT_TARGET)),
        trusted_key_settings=_read_trusted_keys(path, table.get("trusted-keys", [])),
        link_mode=_read_link_mode(path, table.get("link-mode")),
    )


def _read_link_mode(path: Path, value: Any) -> str | None:
    from shelf.linking import LINK_MODES, check_link_mode

    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: 'link-mode' must be a string", hint=f"one of {', '.join(LINK_MODES)}")
    return check_link_mode(value, f"{path}: 'link-mode'")


def _read_requires(path: Path, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{path}: 'requires' must be a list of strings", hint='e.g. requires = ["en_wiki_clm_1>=0.2"]'
        )
    for text in value:
        try:
            parse_requirement(text)
        except RegistryIndexError as e:
            raise ConfigError(f"{path}: in 'requires': {e.message}", hint=e.hint) from e
    return tuple(value)


def _read_shelves(path: Path, table: Mapping[str, Any]) -> tuple[str, ...]:
    if "shelf" in table and "shelves" in table:
        raise ConfigError(f"{path}: set either 'shelf' or 'shelves', not both", hint="keep 'shelves = [...]'")
    value = table.get("shelves", [table["shelf"]] if "shelf" in table else [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{path}: 'shelves' must be a list of shelf URLs or paths ('shelf' a single one)",
            hint='e.g. shelves = ["https://example.org/shelf.git"]',
        )
    return tuple(v.strip() for v in value)


def _read_trusted_keys(path: Path, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{path}: 'trusted-keys' must be a list of public key files",
            hint='e.g. trusted-keys = ["keys/team.pub"] (see `cclm-shelf keygen`)',
        )
    return tuple(value)


def _read_target(path: Path, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: 'target' must be a folder path", hint=f'e.g. target = "{DEFAULT_TARGET}"')
    return value


def _absolute_shelf(shelf: str, root: Path) -> str:
    """A relative local path counts from the project file's folder; URLs and absolute paths stay as given."""
    parsed = ShelfURL.parse(shelf)
    if not parsed.is_local or parsed.scheme == "file":
        return shelf
    return str((root / Path(shelf).expanduser()).resolve())


# --- editing -------------------------------------------------------------------------------------------


def add_requirements(path: Path, requirements: Iterable[Requirement | str]) -> Project:
    """Add (or replace, by name) requirements in the project file at ``path``; other content is kept."""
    project = Project.load(path)
    current = list(project.requirement_strings)
    for requirement in requirements:
        parsed = _parse_for_edit(project.path, requirement)
        text = requirement.strip() if isinstance(requirement, str) else str(parsed)
        names = [parse_requirement(r).name for r in current]
        if parsed.name in names:
            current[names.index(parsed.name)] = text
        else:
            current.append(text)
    _write_requires(project, current)
    return Project.load(project.path)


def remove_requirement(path: Path, name: str) -> Project:
    """Remove every requirement on ``name``; NotFoundError when the project does not require it."""
    project = Project.load(path)
    kept = [r for r in project.requirement_strings if parse_requirement(r).name != name]
    if len(kept) == len(project.requirement_strings):
        raise NotFoundError(
            f"{project.path} does not require {name!r}",
            hint=f"it requires: {', '.join(project.requirement_strings) or 'nothing yet'}",
        )
    _write_requires(project, kept)
    return Project.load(project.path)


def _parse_for_edit(path: Path, requirement: Requirement | str) -> Requirement:
    if not isinstance(requirement, str):
        return requirement
    try:
        return parse_requirement(requirement)
    except RegistryIndexError as e:
        raise ConfigError(f"cannot add to {path}: {e.message}", hint=e.hint) from e


def _write_requires(project: Project, requires: list[str]) -> None:
    import tomllib

    text = project.path.read_text(encoding="utf-8")
    new_text = replace_requires(text, requires, in_pyproject=project.in_pyproject)
    # A safety net: never write a file that does not read back as intended.
    try:
        table = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError:
        table = {}
    if project.in_pyproject:
        table = table.get("tool", {}).get(TOOL_KEY, {})
    if table.get("requires") != requires:
        raise ConfigError(
            f"could not edit 'requires' in {project.path} safely",
            hint=f"edit the file by hand, or write the settings as a [tool.{TOOL_KEY}] table",
        )
    atomic_write(project.path, new_text)


def replace_requires(text: str, requires: list[str], *, in_pyproject: bool) -> str:
    """``text`` with our ``requires`` array replaced (or added); comments, order and layout are kept.

    tomlkit edits the document in place. An inline ``cclm-shelf = {...}`` table is refused (ConfigError):
    rewriting it would change the user's chosen layout.
    """
    import tomlkit  # ~0.1 s to import: only the commands that edit a project need it

    array = tomlkit.array()
    array.extend(requires)
    array.multiline(True)
    document = tomlkit.parse(text)
    if not in_pyproject and "requires" not in document:
        # A new top-level key goes first: after a table header it would land inside that table.
        return tomlkit.dumps({"requires": array}) + text
    table: Any = document
    if in_pyproject:
        tool = document.setdefault("tool", tomlkit.table(is_super_table=True))
        table = tool.setdefault(TOOL_KEY, tomlkit.table())
    if isinstance(table, tomlkit.items.InlineTable):
        raise ConfigError(
            f"could not edit 'requires': [tool.{TOOL_KEY}] is written as an inline table",
            hint=f"edit the file by hand, or write the settings as a [tool.{TOOL_KEY}] table",
        )
    table["requires"] = array
    return tomlkit.dumps(document)
