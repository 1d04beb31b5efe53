"""``install``, ``uninstall``, ``list`` and ``verify``."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import (
    TRUST_KEYS,
    emit,
    install_target,
    json_option,
    link_mode_option,
    note,
    open_shelf,
    project,
    target_option,
)


@click.command("install")
@click.argument("requirements", nargs=-1)
@target_option
@click.option("--pre", is_flag=True, help="Allow pre-release versions.")
@click.option("--frozen", is_flag=True, help="Install the lockfile as it is; fail if it is missing or stale.")
@click.option(
    "--bundle",
    "bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Install from a file made by `cclm-shelf bundle`, with no network (checked against the lockfile).",
)
@click.option(
    "--trust-key",
    "trust_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Public key (PEM) whose signatures are trusted; then every component must be signed by a "
    "trusted key (repeatable; adds to trusted-keys and CCLM_SHELF_TRUSTED_KEYS).",
)
@link_mode_option
@click.option(
    "--force",
    is_flag=True,
    help="Move folders in the way that cclm-shelf did not install into the target's trash.",
)
@json_option
@click.pass_context
def install_cmd(ctx, requirements, target, pre, frozen, bundle, trust_keys, link_mode, force, as_json):
    """Install components and everything they need into the install folder.

    \b
    With REQUIREMENTS (name, name@version, name>=0.2,<0.3 ...), resolve them on the shelf together with
    what the folder already holds (one stack, one base: upgraded together or refused) and install the
    set. With none, install the project's lockfile exactly (locking first if it is missing or stale).
    Ranges skip yanked versions; an exact or lockfile pin of one installs with a warning. Offline, a name
    or range picks the newest version whose files are already in the store. Installed files whose bytes
    changed are repaired; a folder cclm-shelf did not install is never replaced (--force moves it to
    <target>/.cclm-shelf-trash), and edited files go there too.

    \b
    Examples:
      cclm-shelf install en_wiki_clm_1@v0.2.1
      cclm-shelf install 'en_wiki_ner_1>=0.3' --target models/
      cclm-shelf install            # from cclm-shelf.lock
      cclm-shelf install --bundle stack.cclm-bundle   # no network: the lockfile's bytes from a bundle
      cclm-shelf install en_wiki_clm_1@v0.2.1 --trust-key team.pub

    \b
    Signatures are checked before anything is written: a bad one is always refused, and with trusted keys
    an unsigned component or one signed by another key is refused too.
    """
    from shelf.linking import choose_link_mode
    from shelf.progress import make_progress

    ctx.meta[TRUST_KEYS] = trust_keys
    proj = project()
    dest = install_target(target, proj)
    options = {"link_mode": choose_link_mode(link_mode, proj.link_mode if proj else None), "force": force}
    if bundle is not None:
        if requirements:
            raise click.UsageError("give either REQUIREMENTS or --bundle: a bundle installs its lockfile")
        from shelf.commands.bundling import install_bundle

        return install_bundle(ctx, bundle, dest, as_json, **options)
    progress = make_progress(False if as_json else None)  # bars on a terminal only
    try:
        if requirements:
            shelf = open_shelf(ctx, proj, progress=progress)
            report = shelf.install(*requirements, target=dest, allow_prereleases=pre, **options)
        else:
            from shelf.commands.project import ensure_lock

            shelf, lock = ensure_lock(ctx, frozen=frozen)
            shelf.progress = progress
            report = shelf.install_locked(lock, target=dest, **options)
    finally:
        progress.close()
    _print_report(report, dest, as_json)


def _print_report(report, dest: Path, as_json: bool) -> None:
    data = {
        "target": str(dest),
        "installed": [{"name": n, "version": v} for n, v in report.installed],
        "unchanged": [{"name": n, "version": v} for n, v in report.unchanged],
        "objects_fetched": report.objects_fetched,
        "bytes_fetched": report.bytes_fetched,
        "warnings": report.warnings,
        "link_mode": report.link_mode,
        "moved_aside": [{"name": n, "path": str(p)} for n, p in report.moved_aside],
    }
    lines = [f"installed {n} {v} -> {dest / n}" for n, v in report.installed]
    lines += [f"moved the previous {n} (not as installed) to {p}" for n, p in report.moved_aside]
    lines += [f"unchanged {n} {v}" for n, v in report.unchanged]
    if report.objects_fetched:
        lines.append(
            f"fetched {report.objects_fetched} object(s), {_size(report.bytes_fetched)}, all verified"
        )
    for warning in report.warnings:
        note(f"warning: {warning}")
    emit(as_json, data, lines)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.command("uninstall")
@click.argument("names", nargs=-1, required=True)
@target_option
@click.option(
    "--force",
    is_flag=True,
    help="Remove them even when other installed components need them (those are left broken, and "
    "verify says so).",
)
@json_option
@click.pass_context
def uninstall_cmd(ctx, names, target, force, as_json):
    """Remove installed components from the install folder (the project file is not changed).

    A component that another installed one needs (it requires it, or it is the embedder it was trained
    on) is refused unless every component needing it is uninstalled in the same command, or --force is
    given. Only what
    cclm-shelf installed is removed; a component folder holding edited or added files is moved to
    <target>/.cclm-shelf-trash instead.
    """
    from shelf.install import uninstall

    dest = install_target(target, project())
    removed, lines = [], []
    for name, version, kept in uninstall(dest, names, force=force):
        removed.append({"name": name, "version": version})
        lines.append(f"removed {name} {version} from {dest}")
        if kept is not None:  # only then: scripts reading "removed" see what they always saw
            removed[-1]["moved_to"] = str(kept)
            lines.append(f"  it held edited or added files: moved to {kept}")
    emit(as_json, {"target": str(dest), "removed": removed}, lines)


@click.command("list")
@target_option
@json_option
def list_cmd(target, as_json):
    """List the components installed in the install folder."""
    from shelf.install import InstallTarget

    dest = install_target(target, project())
    record = InstallTarget(dest).read_record()
    rows = [
        {
            "name": name,
            "version": entry.get("version"),
            "source": entry.get("source"),
            "files": len(entry.get("files", {})),
        }
        for name, entry in sorted(record["components"].items())
    ]
    # Items fetched from shelves of the original layout, by identifier/item_type and shelf-wide tag.
    rows += [
        {
            "name": key,
            "version": entry.get("tag"),
            "source": entry.get("source") or "original layout",
            "files": len(entry.get("files", {})),
        }
        for key, entry in sorted(record.get("legacy", {}).items())
    ]
    lines = [f"{r['name']:<32} {r['version']:<12} {r['files']} file(s)  {r['source']}" for r in rows]
    emit(as_json, {"target": str(dest), "components": rows}, lines or [f"nothing installed in {dest}"])


@click.command("verify")
@target_option
@click.option(
    "--behaviour",
    is_flag=True,
    help="Also rebuild the installed models and compare their probe outputs with the publisher's "
    "(loads TensorFlow).",
)
@json_option
def verify_cmd(target, behaviour, as_json):
    """Re-hash every installed file against the sha256 its manifest gave, and check the stack's base.

    \b
    Exits 1 when a file does not match, when the installed components disagree on their base, when one
    needs a component that is not installed (uninstall --force), or when nothing is installed. With
    --behaviour, also rebuild every installed model whose manifest records behaviour probes (publish
    --probes), run the probes under the TensorFlow and Keras installed here, and report, per component
    and item, the probe that deviates most and by how much.
    """
    from shelf.install import installed_file_count, verify_installed

    dest = install_target(target, project())
    count = installed_file_count(dest)
    if not count:
        from shelf.errors import NotFoundError

        raise NotFoundError(
            f"nothing is installed in {dest}: there is nothing to verify", hint="cclm-shelf install NAME"
        )
    problems = verify_installed(dest)
    data = {"target": str(dest), "files": count, "problems": problems}
    lines = [f"problem: {p}" for p in problems] or [f"verified {count} file(s) in {dest}: all match"]
    drifted = 0
    if behaviour and not problems:
        drifted = behaviour_lines(dest, None, data, lines)
    emit(as_json, data, lines)
    if problems:
        note(f"{len(problems)} problem(s); `cclm-shelf install` repairs changed files")
        raise SystemExit(1)
    if drifted:
        note(f"{drifted} item(s) behave differently than when published (see DRIFT above)")
        raise SystemExit(1)


def behaviour_lines(dest: Path, names, data: dict, lines: list[str]) -> int:
    """Run the behaviour check, add its rows to ``data`` and ``lines``; returns how many items drifted."""
    from shelf.behaviour import check_behaviour
    from shelf.native_logs import quiet_native_logs

    quiet_native_logs()  # the check builds models: TensorFlow's start-up chatter stays off the terminal

    report = check_behaviour(dest, names)
    data["behaviour"] = [
        {"name": r.name, "version": r.version, "item": r.item, "probe": r.probe}
        | {"deviation": r.deviation, "tolerance": r.tolerance, "ok": r.ok}
        for r in report.results
    ]
    data["without_probes"] = report.without_probes
    lines += [r.line() for r in report.results]
    if report.without_probes:
        lines.append(f"no probes recorded (published without --probes): {', '.join(report.without_probes)}")
    return len(report.drifted)
