"""Building a ``ComposedModel`` from installed components.

Before any weights are loaded (and before TensorFlow is imported), every component's base is checked
against the embedder and preprocessor that are installed beside it: their fingerprints are recomputed from
the installed files, not taken from the manifests, so a mismatch is refused in model terms however the
folder came to be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shelf import constants
from shelf.errors import NotFoundError, translated
from shelf.install import InstallTarget


@dataclass(frozen=True)
class InstalledStack:
    """The installed folders a composition is built from."""

    embedder: Path
    preprocessor: Path | None
    components: tuple[tuple[str, Path], ...]  # (label, folder)


def find_stack(
    target: Path = Path(constants.DEFAULT_TARGET), names: Sequence[str] | None = None
) -> InstalledStack:
    """Locate the embedder, preprocessor and components installed in ``target`` (restricted to ``names``)."""
    install_target = InstallTarget(target)
    record = install_target.read_record()["components"]
    chosen = list(names) if names else sorted(record)
    unknown = [n for n in chosen if n not in record]
    if unknown:
        raise NotFoundError(
            f"not installed in {target}: {', '.join(unknown)}", hint="cclm-shelf install NAME"
        )
    embedders, preprocessors, components = [], [], []
    for name in sorted(record):
        folder = install_target.component_dir(name)
        if (folder / "embedder").is_dir():
            embedders.append(folder / "embedder")
        if (folder / "preprocessor").is_dir():
            preprocessors.append(folder / "preprocessor")
        if name in chosen and (folder / "component").is_dir():
            components.append((f"{name} {record[name].get('version', '?')}", folder / "component"))
    if not components:
        raise NotFoundError(f"no component to compose in {target}", hint="cclm-shelf install NAME@VERSION")
    base = _base_of(components[0][1])
    embedder = _pick(embedders, "embedder", base.get("embedder"), target)
    preprocessor = _pick(preprocessors, "vocab", base.get("vocab"), target, required=False)
    assert embedder is not None  # required=True: _pick raised when none fits
    return InstalledStack(embedder, preprocessor, tuple(components))


def _base_of(component_folder: Path) -> dict:
    from cclm_core.fingerprint import describe

    return describe(component_folder).get("base") or {}


def _pick(
    folders: list[Path], key: str, wanted: str | None, target: Path, required: bool = True
) -> Path | None:
    """The one installed embedder (or preprocessor) whose fingerprint the components were trained on.

    Several bases may be installed side by side; the first component's base says which one to use (the
    others are checked against it later). With a single candidate, that one is taken and checked.
    """
    from cclm_core.fingerprint import describe

    if len(folders) == 1 or (folders and wanted is None):
        return folders[0]
    matching = [f for f in folders if describe(f)["provides"].get(key) == wanted]
    if matching:  # equal fingerprints are the same weights (or vocabulary): any of them will do
        return matching[0]
    if not required and not folders:
        return None
    what = "embedder" if key == "embedder" else "preprocessor"
    raise NotFoundError(
        f"{target} holds {len(folders)} {what}s and none matches the components' base"
        + (f" {wanted[:19]}…" if wanted else ""),
        hint="install the package that provides the components' base (it is in their requires)",
    )


def check_stack(stack: InstalledStack) -> dict:
    """Check every component's base against the installed embedder and preprocessor; no TensorFlow."""
    from cclm_core.compat import check_compatible
    from cclm_core.fingerprint import describe
    from shelf.frameworks import installed_manifest, require

    require({label: installed_manifest(folder) for label, folder in stack.components})

    embedder = describe(stack.embedder)
    components = []
    for label, folder in stack.components:
        info = describe(folder)
        info["name"] = label
        components.append(info)
    preprocessor = describe(stack.preprocessor) if stack.preprocessor else None
    check_compatible(embedder, components, preprocessor)
    return {
        "embedder": embedder,
        "components": components,
        "preprocessor": preprocessor,
        "output_dim": sum(int(c["provides"]["output_dim"]) for c in components),
    }


@translated()
def compose_installed(
    names: Sequence[str] | None = None,
    target: str | Path = constants.DEFAULT_TARGET,
    lockfile: str | Path | None = None,
):
    """A ``ComposedModel`` (with its ``Preprocessor`` when one is installed) from an install folder.

    ``names`` picks components (default: every installed one); ``lockfile`` takes the names it pins.
    Every base is checked from the installed files before any weights load.
    """
    if lockfile is not None:
        from shelf.lockfile import load_lockfile

        names = [c.name for c in load_lockfile(Path(lockfile)).components]
    stack = find_stack(Path(target), names)
    check_stack(stack)
    from cclm_core.component import load_component
    from cclm_core.models import ComposedModel, Embedder
    from cclm_core.preprocessing import Preprocessor

    embedder = Embedder.load(stack.embedder)
    components = [load_component(folder) for _label, folder in stack.components]
    prep = None
    if stack.preprocessor is not None:
        prep = Preprocessor(load_from=str(stack.preprocessor / "cclm_config.json"))
    return ComposedModel(embedder, components, preprocessor=prep)
