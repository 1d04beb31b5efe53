"""The command line as pip and uv users type it: global options anywhere, --json everywhere, JSON errors."""

from __future__ import annotations

import json

import pytest

from shelf.cli import hoist_global_options, wants_json
from tests.shelf.conftest import BASE, MLM, publish_args, publish_folder, shelf_refs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["install", "x", "--shelf", "S", "--offline"], ["--shelf", "S", "--offline", "install", "x"]),
        (["install", "x", "--cache-dir=D", "-v"], ["--cache-dir=D", "-v", "install", "x"]),
        (["--shelf", "S", "show", "x", "--json"], ["--shelf", "S", "show", "x", "--json"]),
        (["cache", "info", "--cache-dir", "D"], ["--cache-dir", "D", "cache", "info"]),
        (["install", "--", "--offline"], ["install", "--", "--offline"]),
        (["--help"], ["--help"]),
        (["--json", "--offline", "show", "x"], ["--offline", "show", "x", "--json"]),
        (["--json", "cache", "info", "--", "y"], ["cache", "info", "--json", "--", "y"]),
    ],
)
def test_global_options_move_in_front_of_the_command(args, expected):
    assert hoist_global_options(args) == expected


def test_wants_json_ignores_words_after_a_double_dash():
    assert wants_json(["show", "x", "--json"])
    assert not wants_json(["install", "--", "--json"])


def test_options_after_the_command_reach_the_command(cli, stocked_shelf, tmp_path):
    cache = tmp_path / "own-cache"
    done = cli(
        "install", "mlm@0.1.0", "--target", tmp_path / "t", "--shelf", stocked_shelf, "--cache-dir", cache
    )
    assert done.code == 0, done.err
    assert (tmp_path / "t" / "mlm").is_dir()
    assert (cache / "blobs").is_dir()  # the blob store went where --cache-dir said, after the command
    offline = cli("show", "mlm", "--offline", "--shelf", stocked_shelf, "--cache-dir", cache, "--json")
    assert offline.code == 0, offline.err
    assert [v["version"] for v in offline.json()["versions"]] == ["0.1.0"]


def test_an_error_with_json_is_one_json_object_on_stdout(cli, stocked_shelf):
    result = cli("--shelf", stocked_shelf, "yank", "base@9.9.9", "--reason", "x", "--json")
    assert result.code == 1
    error = json.loads(result.out)
    assert set(error) == {"error", "hint", "exit_code"}
    assert error["exit_code"] == 1 and "base 9.9.9 is not published" in error["error"]
    assert error["hint"] == "cclm-shelf show base"
    usage = cli("install", "--no-such-option", "--json")
    assert usage.code == 2 and json.loads(usage.out)["exit_code"] == 2
    assert "--no-such-option" in json.loads(usage.out)["error"]


def test_a_bad_jobs_setting_is_an_error(cli, stocked_shelf, tmp_path, monkeypatch):
    monkeypatch.setenv("CCLM_SHELF_JOBS", "abc")
    result = cli("--shelf", stocked_shelf, "install", "mlm@0.1.0", "--target", tmp_path / "t")
    assert result.code == 2
    assert "CCLM_SHELF_JOBS='abc'" in result.err and "whole number" in result.err
    assert not (tmp_path / "t").exists()


def test_a_bad_index_max_age_is_an_error(cli, stocked_shelf, tmp_path, monkeypatch):
    monkeypatch.setenv("CCLM_SHELF_INDEX_MAX_AGE", "soon")
    result = cli("--shelf", stocked_shelf, "install", "mlm", "--target", tmp_path / "t")
    assert result.code == 2 and "CCLM_SHELF_INDEX_MAX_AGE='soon'" in result.err
    assert not (tmp_path / "t").exists()


def test_yank_twice_keeps_the_first_reason_and_unyank_undoes_it(cli, stocked_shelf):
    first = cli("--shelf", stocked_shelf, "yank", "base@0.1.0", "--reason", "wrong split", "--json").json()
    assert first == {
        "name": "base", "version": "0.1.0", "shelf": first["shelf"], "yanked": True,
        "yank_reason": "wrong split", "changed": True, "commit": first["commit"],
    }  # fmt: skip
    cli("--shelf", stocked_shelf, "yank", "base@0.1.0", "--reason", "also leaks test data")
    shown = cli("--shelf", stocked_shelf, "show", "base")
    assert "yanked: wrong split; then: also leaks test data" in shown.out
    before = shelf_refs(stocked_shelf)
    again = cli("--shelf", stocked_shelf, "yank", "base@0.1.0", "--reason", "also leaks test data")
    assert again.code == 0 and "nothing changed" in again.out
    assert shelf_refs(stocked_shelf) == before
    undone = cli("--shelf", stocked_shelf, "unyank", "base@0.1.0", "--json").json()
    assert undone["yanked"] is False and undone["changed"] is True and undone["yank_reason"] is None
    assert "yanked" not in cli("--shelf", stocked_shelf, "show", "base").out
    twice = cli("--shelf", stocked_shelf, "unyank", "base@0.1.0")
    assert twice.code == 0 and "already not yanked" in twice.out
    bad = cli("--shelf", stocked_shelf, "unyank", "base", "--json")
    assert bad.code == 2 and "is not NAME@VERSION" in bad.json()["error"]


def test_add_remove_uninstall_and_publish_report_json(cli, shelf_path, saved_models, tmp_path, monkeypatch):
    published = cli(*publish_args(saved_models / BASE, "base"), "--shelf", shelf_path, "--json").json()
    assert (published["name"], published["version"]) == ("base", "0.1.0")
    assert published["manifest_digest"].startswith("sha256:") and len(published["manifest_digest"]) == 71
    publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.0", ["base==0.1.0"])
    monkeypatch.chdir(tmp_path)
    added = cli("add", "mlm@0.1.0", "--shelf", shelf_path, "--json")
    assert added.code == 0, added.err
    data = added.json()
    assert data["locked"] == [{"name": "base", "version": "0.1.0"}, {"name": "mlm", "version": "0.1.0"}]
    assert {r["name"] for r in data["installed"]} == {"base", "mlm"}
    removed = cli("uninstall", "mlm", "--json").json()
    assert removed["removed"] == [{"name": "mlm", "version": "0.1.0"}]
    assert not (tmp_path / ".cclm" / "mlm").exists()
    dropped = cli("remove", "mlm", "--json").json()
    assert dropped["removed"] == ["mlm"] and dropped["locked"] == []
    assert dropped["uninstalled"] == [{"name": "base", "version": "0.1.0"}]
    made = cli("init", tmp_path / "other.git", "--json").json()
    assert made["created"] is True and made["shelf"].endswith("other.git")


# Commands that run rather than report: a server, and a demo that prints its progress as it goes.
NOT_REPORTING = {"serve", "quickstart"}


def test_every_reporting_command_has_json():
    import click

    from shelf.cli import COMMANDS, cli

    ctx = click.Context(cli)
    missing = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        if command is None or name in NOT_REPORTING:
            continue
        subcommands = command.commands.values() if isinstance(command, click.Group) else [command]
        for sub in subcommands:
            if not any("--json" in p.opts for p in sub.params):
                missing.append(f"{name} {sub.name}" if sub is not command else name)
    assert missing == []
