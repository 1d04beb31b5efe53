"""``compose``: check installed components against their base, and build the composed model."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, install_target, json_option, note, project, target_option


@click.command("compose")
@click.argument("names", nargs=-1)
@target_option
@click.option("--save", "save_to", type=click.Path(file_okay=False, path_type=Path),
              help="Build the composed model and save it to this folder: a new or empty one, or an earlier "
                   "save, replaced whole (loads TensorFlow).")  # fmt: skip
@click.option(
    "--check",
    "check_behaviour",
    is_flag=True,
    help="Also rebuild the stack's models and compare their probe outputs with the publishers' "
    "(loads TensorFlow).",
)
@json_option
def compose_cmd(names, target, save_to, check_behaviour, as_json):
    """Check that installed components share one base, and show (or save) what they compose into.

    \b
    NAMES picks components (default: every installed one). Bases are checked from the installed files,
    before any weights load; the check alone needs no TensorFlow.

    \b
    Examples:
      cclm-shelf compose                          # check the whole install folder
      cclm-shelf compose en_wiki_ner_1 --save composed/
      cclm-shelf compose --check                  # also compare behaviour probes (TensorFlow)
    """
    from shelf.compose import check_stack, compose_installed, find_stack

    dest = install_target(target, project())
    stack = find_stack(dest, names or None)
    checked = check_stack(stack)
    length = checked["embedder"]["provides"]["max_input_length"]
    shape = [1, length, checked["output_dim"]]
    data = {
        "target": str(dest),
        "embedder": checked["embedder"]["fingerprint"],
        "components": [
            {"name": c["name"], "output_dim": c["provides"]["output_dim"]} for c in checked["components"]
        ],
        "output_shape": shape,
    }
    lines = [f"embedder  {checked['embedder']['fingerprint'][:19]}…  ({stack.embedder.parent.name})"]
    lines += [f"component {c['name']:<40} out {c['provides']['output_dim']}" for c in checked["components"]]
    lines.append(f"composed output shape for one input: {tuple(shape)}; every base matches")
    if save_to is not None:
        _check_save_folder(save_to)  # before any model is built
    if save_to is not None or check_behaviour:
        from shelf.native_logs import quiet_native_logs

        quiet_native_logs()
    drifted = _check(dest, stack, data, lines) if check_behaviour else 0
    if save_to is not None and not drifted:  # a stack that drifted is not saved as if it were sound
        note("building the composed model")
        _save(compose_installed(names or None, target=dest), save_to)
        data["saved"] = str(save_to)
        lines.append(f"saved the composed model to {save_to}")
    emit(as_json, data, lines)
    if drifted:
        note(f"{drifted} item(s) behave differently than when published (see DRIFT above)")
        raise SystemExit(1)


def _check_save_folder(save_to: Path) -> None:
    """Refuse to save over a folder of the user's: only a new or empty one, or an earlier composed save."""
    from cclm_core.formats import COMPOSED_CONFIG
    from shelf.errors import ConfigError

    if save_to.is_dir() and any(save_to.iterdir()) and not (save_to / COMPOSED_CONFIG).is_file():
        raise ConfigError(
            f"{save_to} holds files that are not a composed model; nothing was saved",
            hint="give --save a new or empty folder, or one an earlier `cclm-shelf compose --save` wrote",
        )


def _save(composed, save_to: Path) -> None:
    """Save beside ``save_to``, then swap it in: an earlier save is replaced whole, never mixed with this."""
    from shelf.fsutil import new_staging, remove_tree, swap_dir

    final = save_to.absolute()
    staging = new_staging(final)
    try:
        composed.save(staging)
        swap_dir(staging, final)
    except BaseException:
        remove_tree(staging)
        raise


def _check(dest: Path, stack, data: dict, lines: list[str]) -> int:
    """The behaviour check of every package the stack is built from; returns how many items drifted."""
    from shelf.commands.installing import behaviour_lines

    packages = sorted({stack.embedder.parent.name} | {folder.parent.name for _l, folder in stack.components})
    drifted = behaviour_lines(dest, packages, data, lines)
    if not drifted:
        lines.append(
            "the stack behaves as published" if data["behaviour"] else "no behaviour probes recorded"
        )
    return drifted
