"""A target is one composable stack: every component in it agrees on one base.

The resolver already refuses a set whose bases disagree; this module checks the *target*, which may hold
components from earlier installs: before an install changes it (``check_stack``) and when ``verify`` reads
it (``disagreements``). A component's base is the one its manifest names; an embedder package stands for
the base it provides. Values are compared on the keys the resolver binds (embedder, vocabulary, input
length), a missing value binding nothing. ``dependents`` says what the components staying in a target
need of those an uninstall takes away, and ``unmet_requirements`` what ``verify`` finds missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelf import constants
from shelf.errors import ResolutionError
from shelf.resolution.explain import short
from shelf.resolution.models import BASE_KEYS, BASE_LABELS

Member = tuple[str, dict[str, Any]]  # ("name version", {base key: value})


def base_from_manifest(data: bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    """The base values a manifest binds its stack to ({} when it names none or cannot be read)."""
    from registry_index.manifest import Base, provided_base

    try:
        raw = json.loads(data) if isinstance(data, bytes | str) else dict(data or {})
        base = Base.from_dict(raw["base"]) if raw.get("base") else None
        base = provided_base(raw.get("kind", ""), raw.get("provides") or {}, base) or base
    except (ValueError, TypeError, KeyError):
        return {}
    return base_values(base)


def base_values(base: Any) -> dict[str, Any]:
    """The resolver's base keys of a ``Base`` (or None), leaving out what is not set."""
    if base is None:
        return {}
    values = {key: getattr(base, key, None) for key in BASE_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def member(spec: Any, manifest: bytes | None) -> Member:
    """A pinned component (a lockfile entry) as a stack member: its manifest's base, else the pinned one."""
    base = base_from_manifest(manifest) if manifest is not None else {}
    return (f"{spec.name} {spec.version}", base or base_values(getattr(spec, "base", None)))


def installed_members(root: Path, components: Mapping[str, dict]) -> dict[str, Member]:
    """Each recorded component's label and base, from the record or else its installed manifest."""
    found = {}
    for name, entry in components.items():
        base = entry.get("base")
        if base is None:
            try:
                base = base_from_manifest((root / name / constants.MANIFEST_FILE).read_bytes())
            except OSError:
                base = {}
        found[name] = (f"{name} {entry.get('version', '?')}", base)
    return found


def disagreements(members: Mapping[str, Member]) -> list[str]:
    """One line per base key on which the members disagree, naming who is on which side."""
    lines = []
    for key in BASE_KEYS:
        sides: dict[str, list[str]] = {}
        for label, base in members.values():
            if key in base:
                sides.setdefault(str(base[key]), []).append(label)
        if len(sides) > 1:
            told = "; ".join(f"{', '.join(sorted(who))} on {short(v)}" for v, who in sorted(sides.items()))
            lines.append(f"the {BASE_LABELS[key]}s disagree: {told}")
    return lines


def check_stack(target: Path, installed: Mapping[str, Member], incoming: Mapping[str, Member]) -> None:
    """Refuse, in model terms, an install that would leave ``target`` holding components of two bases."""
    staying = {name: member for name, member in installed.items() if name not in incoming}
    problems = disagreements({**staying, **incoming})
    if not problems or not staying:
        return
    kept = ", ".join(sorted(member[0] for member in staying.values()))
    raise ResolutionError(
        f"installing {', '.join(m[0] for m in incoming.values())} into {target} would break its stack: "
        + "; ".join(problems),
        hint=f"what stays installed ({kept}) has no version on that base here: uninstall it first "
        "(cclm-shelf uninstall NAME), or install into another --target",
    )


def stack_conflict(target: Path, alone: tuple, conflict: ResolutionError) -> ResolutionError:
    """Why a request cannot join the stack in ``target``: the bases that disagree, else the versions."""
    from shelf.target import InstallTarget

    components, manifests, _ = alone
    record = InstallTarget(target).read_record()["components"]
    incoming = {c.name: member(c, manifests.get(c.name)) for c in components}
    try:
        check_stack(target, installed_members(target, record), incoming)
    except ResolutionError as in_model_terms:
        return in_model_terms
    asked = ", ".join(sorted(f"{c.name} {c.version}" for c in components))
    return ResolutionError(
        f"{asked} cannot join the stack installed in {target}: {conflict.message}",
        hint="install into another --target, or uninstall the components that hold it back",
    )


def installed_versions(target: Path, asked: set[str]) -> dict[str, str]:
    """The components installed in ``target`` that the user did not name again: {name: version}."""
    from shelf.target import InstallTarget

    record = InstallTarget(target).read_record()["components"]
    return {
        name: str(entry["version"])
        for name, entry in record.items()
        if name not in asked and isinstance(entry, dict) and entry.get("version")
    }


def dependents(root: Path, components: Mapping[str, dict], leaving: set[str]) -> dict[str, list[str]]:
    """Which components staying in ``root`` need one that is ``leaving``: {staying name: [needed names]}.

    A component needs what its manifest requires and the embedder package that provides its base's
    embedder (unless an embedder staying in ``root`` provides the same one).
    """
    manifests = {name: _installed_manifest(root, name) for name in components}
    members = installed_members(root, components)
    provides = {
        name: members[name][1].get("embedder")
        for name, manifest in manifests.items()
        if manifest.get("kind") == "embedder"
    }
    kept = {value for name, value in provides.items() if name not in leaving}
    found = {}
    for name in sorted(set(components) - leaving):
        needed = _required_names(manifests[name]) & leaving
        embedder = members[name][1].get("embedder")
        if name not in provides and embedder is not None and embedder not in kept:
            needed |= {other for other in leaving if other in provides and provides[other] == embedder}
        if needed:
            found[name] = sorted(needed)
    return found


def unmet_requirements(root: Path, components: Mapping[str, dict]) -> list[str]:
    """One line per installed component whose required component is not installed beside it (what
    ``uninstall --force`` leaves)."""
    return [
        f"{name} needs {needed}, which is not installed"
        for name in sorted(components)
        for needed in sorted(_required_names(_installed_manifest(root, name)) - set(components))
    ]


def _installed_manifest(root: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((root / name / constants.MANIFEST_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _required_names(manifest: Mapping[str, Any]) -> set[str]:
    from registry_index.errors import RegistryIndexError
    from registry_index.requirements import parse_requirement

    names = set()
    for text in manifest.get("requires") or ():
        try:
            names.add(parse_requirement(text).name)
        except RegistryIndexError:
            continue  # an installed manifest was validated at install: nothing to hold on to here
    return names
