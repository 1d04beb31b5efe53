"""A served shelf end to end: git daemon + giftless on loopback, publish to git://, install elsewhere."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shelf import serve
from shelf.api import Shelf
from shelf.source import ShelfSource, create_shelf
from tests.shelf.conftest import BASE, MLM, cli, saved_models  # noqa: F401 - fixtures shared with tests/shelf

pytestmark = pytest.mark.network


def listening(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def group_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once no process is left in the process group ``pid`` leads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def processes_mentioning(text: str) -> list[int]:
    """Ids of the live processes whose command line contains ``text`` (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


@pytest.fixture
def served(tmp_path):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    servers = serve.start(shelf_path)
    try:
        source = ShelfSource(str(shelf_path), cache_dir=tmp_path / "server-cache")
        source.refresh()
        assert serve.point_lfs_url(source, servers.lfs_url) is True
        assert serve.point_lfs_url(source, servers.lfs_url) is False  # already pointed: no second commit
        yield shelf_path, servers
    finally:
        servers.stop()


def test_publish_to_git_url_and_install_with_another_cache(served, cli, saved_models, tmp_path, monkeypatch):  # noqa: F811
    shelf_path, servers = served
    lfsconfig = subprocess.run(
        ["git", f"--git-dir={shelf_path}", "show", "main:.lfsconfig"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"url = {servers.lfs_url}" in lfsconfig
    for folder, name, extra in ((BASE, "base", []), (MLM, "mlm", ["--requires", "base==0.1.0"])):
        result = cli(
            "--shelf",
            servers.git_url,
            "publish",
            saved_models / folder,
            "--name",
            name,
            "--version",
            "0.1.0",
            *extra,
            "--json",
        )
        assert result.code == 0, result.err
        assert result.json()["uploaded"] >= 2
    weights = saved_models / MLM / "component.weights.h5"
    oid = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (shelf_path / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes() == weights.read_bytes()

    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "other-machine"))
    target = tmp_path / "installed"
    installed = cli("--shelf", servers.git_url, "install", "mlm@v0.1.0", "--target", target)
    assert installed.code == 0, installed.err
    assert (target / "mlm" / "component" / "component.weights.h5").read_bytes() == weights.read_bytes()
    assert (target / "base" / "embedder" / "embedder.weights.h5").is_file()
    # The served shelf stays a usable local path: the same objects, read directly.
    local = Shelf(str(shelf_path), cache_dir=tmp_path / "third").install(
        "mlm==0.1.0", target=tmp_path / "local"
    )
    assert dict(local.installed) == {"base": "0.1.0", "mlm": "0.1.0"}


def test_lfs_server_refuses_bytes_that_do_not_match_their_oid(served):
    shelf_path, servers = served
    body = b"these bytes do not hash to the oid they claim"
    oid = hashlib.sha256(b"something else").hexdigest()
    batch = requests.post(
        f"{servers.lfs_url}/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(body)}]},
        headers={"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
        timeout=30,
    )
    assert batch.status_code == 200, batch.text
    upload = batch.json()["objects"][0]["actions"]["upload"]
    put = requests.put(upload["href"], data=body, headers=upload.get("header", {}), timeout=30)
    assert put.status_code >= 400
    assert not (shelf_path / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    assert list((shelf_path / "lfs" / "tmp").iterdir()) == []


def test_stopping_leaves_no_processes(tmp_path):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    servers = serve.start(shelf_path, url_host="localhost")  # the name clients use, not the address
    pids = [p.pid for p in servers.processes]
    lfs_port = servers.lfs_url.split(":")[2].split("/")[0]
    try:
        deadline = time.monotonic() + 15  # gunicorn listens first, then forks its workers
        while len(processes_mentioning(f"127.0.0.1:{lfs_port}")) < 1 + serve.LFS_WORKERS:
            assert time.monotonic() < deadline, "gunicorn never started all its workers"
            time.sleep(0.1)
        assert servers.git_url.startswith("git://localhost:") and servers.lfs_url.startswith(
            "http://localhost:"
        )
        assert listening(servers.git_url) and listening(servers.lfs_url)
        heads = subprocess.run(
            ["git", "ls-remote", servers.git_url], capture_output=True, text=True, check=True
        )
        assert "refs/heads/main" in heads.stdout
    finally:
        servers.stop()
    assert all(p.poll() is not None for p in servers.processes)
    assert all(group_gone(pid) for pid in pids)
    assert not listening(servers.git_url) and not listening(servers.lfs_url)
    assert processes_mentioning(f"127.0.0.1:{lfs_port}") == []


def test_serve_command_runs_until_terminated(tmp_path):
    from tests.support.git_servers import free_port

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    git_port, lfs_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "shelf.cli",
        "serve",
        str(shelf_path),
        "--git-port",
        str(git_port),
        "--lfs-port",
        str(lfs_port),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        assert lines[0].startswith("pointed ") and f"git://127.0.0.1:{git_port}/team.git" in "".join(lines)
        assert listening(f"git://127.0.0.1:{git_port}") and listening(f"http://127.0.0.1:{lfs_port}")
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err
    assert not listening(f"git://127.0.0.1:{git_port}") and not listening(f"http://127.0.0.1:{lfs_port}")
    assert processes_mentioning(f"--port={git_port}") == []  # git daemon and its forked child
    assert processes_mentioning(f"127.0.0.1:{lfs_port}") == []  # gunicorn and its workers


def test_busy_port_is_refused_before_starting(tmp_path):
    from shelf.errors import ConfigError

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}") as raised:
            serve.start(shelf_path, lfs_port=port)
    assert raised.value.hint == "choose another port with --lfs-port"


def test_serving_a_missing_shelf_is_an_error(cli, tmp_path):  # noqa: F811
    result = cli("serve", tmp_path / "nowhere.git", "--git-port", "1", "--lfs-port", "2")
    assert result.code == 1 and "error: the shelf" in result.err and "does not exist" in result.err


def test_serve_needs_a_shelf_on_this_machine(cli):  # noqa: F811
    result = cli("--shelf", "git://example.invalid/shelf.git", "serve")
    assert (
        result.code == 2
        and "error: git://example.invalid/shelf.git is not a shelf on this machine" in result.err
    )
