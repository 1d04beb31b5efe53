"""A served shelf end to end: git daemon and the HTTP front on loopback, publish with a token, install."""

# ruff: noqa: F811 - the shared fixtures are imported by name for pytest

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from shelf import serve
from shelf.api import Shelf
from shelf.source import ShelfSource, create_shelf
from tests.shelf.conftest import BASE, MLM, cli, saved_models, shelf_refs  # noqa: F401 - shared fixtures
from tests.support.processes import eventually, port_listening, processes_mentioning

pytestmark = pytest.mark.network

TOKEN = "team-token-0123456789abcdef"
LFS_JSON = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}


def listening(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return port_listening(int(port), host)


def group_gone(pid: int) -> bool:
    def gone() -> bool:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        return False

    return eventually(gone)


def git(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(["git", *args], capture_output=True, text=True, env=full)


def bare_repo_with_a_file(tmp_path: Path, name: str, file: str, text: str) -> Path:
    """A bare repository (not a shelf), main holding one commit with ``file``, pushed from tmp_path/seed."""
    repo, seed = tmp_path / name, tmp_path / "seed"
    assert git("init", "-q", "--bare", str(repo)).returncode == 0
    assert git("init", "-q", str(seed)).returncode == 0
    (seed / file).write_text(text)
    assert git("-C", str(seed), "add", ".").returncode == 0
    assert git("-C", str(seed), "commit", "-qm", f"add {file}").returncode == 0
    assert git("-C", str(seed), "push", "-q", str(repo), "HEAD:refs/heads/main").returncode == 0
    return repo


def token_file(folder: Path, *tokens: str) -> Path:
    path = folder / "tokens"
    path.write_text("# who may publish\n" + "".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return path


def lfs_object(shelf_path: Path, oid: str) -> Path:
    return shelf_path / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


@pytest.fixture
def served(tmp_path):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    servers = serve.start(shelf_path, token_file=token_file(tmp_path, TOKEN))
    try:
        source = ShelfSource(str(shelf_path), cache_dir=tmp_path / "server-cache")
        source.refresh()
        assert serve.point_lfs_url(source, servers.lfs_url) is True
        assert serve.point_lfs_url(source, servers.lfs_url) is False  # already pointed: no second commit
        yield shelf_path, servers
    finally:
        servers.stop()


def publish(cli, url: str, folder: Path, name: str, *extra: str):
    return cli("--shelf", url, "publish", folder, "--name", name, "--version", "0.1.0", *extra, "--json")


def test_publish_over_http_with_a_token_and_install_with_another_cache(
    served, cli, saved_models, tmp_path, monkeypatch
):
    shelf_path, servers = served
    lfsconfig = git(f"--git-dir={shelf_path}", "show", "main:.lfsconfig").stdout
    assert f"url = {servers.lfs_url}" in lfsconfig
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    for folder, name, extra in ((BASE, "base", []), (MLM, "mlm", ["--requires", "base==0.1.0"])):
        result = publish(cli, servers.http_url, saved_models / folder, name, *extra)
        assert result.code == 0, result.err
        assert result.json()["uploaded"] >= 2
    weights = saved_models / MLM / "component.weights.h5"
    oid = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert lfs_object(shelf_path, oid).read_bytes() == weights.read_bytes()

    read_only = cli("--shelf", servers.git_url, "yank", "mlm@0.1.0", "--reason", "x")  # no pushes there
    assert read_only.code == 1
    assert read_only.err.splitlines()[0] == (
        f"error: the shelf {servers.git_url} is read-only: its server takes no pushes there"
    )
    assert "publish to its http:// URL with a token" in read_only.err
    monkeypatch.delenv("CCLM_SHELF_TOKEN")  # readers need no token, over git:// or HTTP
    for number, url in enumerate((servers.git_url, servers.http_url)):
        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / f"other-machine-{number}"))
        target = tmp_path / f"installed-{number}"
        installed = cli("--shelf", url, "install", "mlm@v0.1.0", "--target", target)
        assert installed.code == 0, installed.err
        assert (target / "mlm" / "component" / "component.weights.h5").read_bytes() == weights.read_bytes()
        assert (target / "base" / "embedder" / "embedder.weights.h5").is_file()
    # The served shelf stays a usable local path: the same objects, read directly.
    local = Shelf(str(shelf_path), cache_dir=tmp_path / "third").install(
        "mlm==0.1.0", target=tmp_path / "local"
    )
    assert dict(local.installed) == {"base": "0.1.0", "mlm": "0.1.0"}


def test_publishing_without_or_with_a_wrong_token_changes_nothing(served, cli, saved_models, monkeypatch):
    shelf_path, servers = served
    before = shelf_refs(shelf_path)
    for token, said in (
        (None, "needs credentials (403)"),
        ("not-the-team-token-at-all", "refused the credentials (401)"),
    ):
        if token:
            monkeypatch.setenv("CCLM_SHELF_TOKEN", token)
        result = publish(cli, servers.http_url, saved_models / BASE, "base")
        assert result.code == 1
        assert f"error: LFS batch upload at {servers.lfs_url}: the server {said}" in result.err
        assert result.err.count(servers.lfs_url) == 1  # the server named once, not twice in one line
        assert "hint: set CCLM_SHELF_TOKEN" in result.err and "Traceback" not in result.err
        assert not token or token not in result.err
    assert shelf_refs(shelf_path) == before
    assert not list((shelf_path / "lfs" / "objects").rglob("*")) or all(
        p.is_dir() for p in (shelf_path / "lfs" / "objects").rglob("*")
    )


def test_the_token_may_come_from_netrc_or_a_git_credential_helper(
    served, cli, saved_models, tmp_path, monkeypatch
):
    shelf_path, servers = served
    host = servers.http_url.split("//")[1].split("/")[0].split(":")[0]
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # git (curl) and requests both read ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host} login publisher password {TOKEN}\n")
    netrc.chmod(0o600)
    first = publish(cli, servers.http_url, saved_models / BASE, "base")
    assert first.code == 0, first.err[-600:]
    netrc.unlink()
    store = tmp_path / "git-credentials"
    store.write_text(f"http://publisher:{TOKEN}@{servers.http_url.split('//')[1].split('/')[0]}\n")
    store.chmod(0o600)
    config = tmp_path / "gitconfig"
    config.write_text(f"[credential]\n\thelper = store --file={store}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    second = publish(cli, servers.http_url, saved_models / MLM, "mlm", "--requires", "base==0.1.0")
    assert second.code == 0, second.err
    tags = git(f"--git-dir={shelf_path}", "tag").stdout.split()
    assert sorted(tags) == ["base/v0.1.0", "mlm/v0.1.0"]


def test_git_pushes_need_a_token_and_git_url_is_read_only(served, tmp_path):
    shelf_path, servers = served
    checkout = tmp_path / "checkout"
    assert git("clone", "-q", servers.http_url, str(checkout)).returncode == 0  # anyone clones
    assert git("-C", str(checkout), "commit", "-q", "--allow-empty", "-m", "sneaky").returncode == 0
    before = shelf_refs(shelf_path)
    anonymous = git("-C", str(checkout), "push", servers.http_url, "HEAD:refs/heads/sneaky")
    assert anonymous.returncode != 0 and "terminal prompts disabled" in anonymous.stderr
    wrong = servers.http_url.replace("http://", "http://someone:wrong-token-0123456789@")
    refused = git("-C", str(checkout), "push", wrong, "HEAD:refs/heads/sneaky")
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr
    assert "the shelf team.git refused the request" in refused.stderr
    daemon = git("-C", str(checkout), "push", servers.git_url, "HEAD:refs/heads/sneaky")
    assert daemon.returncode != 0 and "service not enabled" in daemon.stderr
    assert shelf_refs(shelf_path) == before
    # The token as the password, any user name: the push lands.
    right = servers.http_url.replace("http://", f"http://anyone:{TOKEN}@")
    assert git("-C", str(checkout), "push", right, "HEAD:refs/heads/allowed").returncode == 0
    assert "refs/heads/allowed" in shelf_refs(shelf_path)


def test_only_the_served_repository_is_reachable(served, tmp_path):
    _shelf_path, servers = served
    sibling = bare_repo_with_a_file(tmp_path, "secrets.git", "password.txt", "hunter2\n")
    seed = tmp_path / "seed"  # the work tree it was pushed from
    sibling_refs = shelf_refs(sibling)
    right = f"http://x:{TOKEN}@"
    for url in (
        servers.git_url.replace("team.git", "secrets.git"),
        servers.http_url.replace("team.git", "secrets.git"),
        servers.http_url.replace("http://", right).replace("team.git", "secrets.git"),
        servers.git_url.replace("team.git", "team.git/../secrets.git"),
        servers.http_url.replace("team.git", "team.git/../secrets.git"),
    ):
        assert git("clone", "-q", url, str(tmp_path / "stolen")).returncode != 0, url
        assert not (tmp_path / "stolen").exists()
        assert git("-C", str(seed), "push", url, "HEAD:refs/heads/planted").returncode != 0, url
    assert shelf_refs(sibling) == sibling_refs
    # Nor any file of the served repository outside git's protocol (dumb HTTP, config, hooks).
    for path in ("config", "HEAD", "objects/info/packs", "hooks/pre-receive.sample", "../secrets.git/config"):
        answer = requests.get(f"{servers.http_url}/{path}", timeout=30)
        assert answer.status_code == 404 and "[core]" not in answer.text, path


def test_an_anonymous_fetch_request_cannot_fill_the_disk(served):
    from shelf.serve_git import READER_BODY_LIMIT

    _shelf_path, servers = served
    chunk = b"0" * (1 << 20)

    def body():
        for _ in range(READER_BODY_LIMIT // len(chunk) + 2):
            yield chunk

    answer = requests.post(
        f"{servers.http_url}/git-upload-pack",
        data=body(),
        headers={"Content-Type": "application/x-git-upload-pack-request"},
        timeout=60,
    )
    assert answer.status_code == 413
    assert "refs/heads/main" in git("ls-remote", servers.http_url).stdout  # and the server still serves


def test_lfs_downloads_are_open_and_uploads_need_the_token(served):
    _shelf_path, servers = served
    oid = hashlib.sha256(b"anything").hexdigest()

    def batch(operation: str, auth: str | None) -> requests.Response:
        headers = {**LFS_JSON, **({"Authorization": auth} if auth else {})}
        body = {"operation": operation, "transfers": ["basic"], "objects": [{"oid": oid, "size": 8}]}
        return requests.post(f"{servers.lfs_url}/objects/batch", json=body, headers=headers, timeout=30)

    assert batch("download", None).status_code in (200, 404)  # answered: the object is simply absent
    assert batch("upload", None).status_code == 403
    assert batch("upload", "Bearer not-the-token-0123456789").status_code == 401
    import base64

    basic = "Basic " + base64.b64encode(f"git:{TOKEN}".encode()).decode()
    for auth in (f"Bearer {TOKEN}", basic):
        answer = batch("upload", auth)
        assert answer.status_code == 200 and "upload" in answer.json()["objects"][0]["actions"]


def test_lfs_server_refuses_bytes_that_do_not_match_their_oid(served):
    shelf_path, servers = served
    body = b"these bytes do not hash to the oid they claim"
    oid = hashlib.sha256(b"something else").hexdigest()
    batch = requests.post(
        f"{servers.lfs_url}/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(body)}]},
        headers={**LFS_JSON, "Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert batch.status_code == 200, batch.text
    upload = batch.json()["objects"][0]["actions"]["upload"]
    put = requests.put(upload["href"], data=body, headers=upload.get("header", {}), timeout=30)
    assert put.status_code >= 400
    assert not lfs_object(shelf_path, oid).exists()
    assert list((shelf_path / "lfs" / "tmp").iterdir()) == []


def test_a_shelf_served_without_tokens_is_read_only(tmp_path, cli, saved_models, monkeypatch):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    with serve.start(shelf_path) as servers:
        assert not servers.writable
        monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
        result = publish(cli, servers.http_url, saved_models / BASE, "base")
        assert result.code == 1 and "refused the credentials (401)" in result.err
        right = servers.http_url.replace("http://", f"http://x:{TOKEN}@")
        pushed = git("push", right, "refs/heads/main:refs/heads/other", env={"GIT_DIR": str(shelf_path)})
        assert pushed.returncode != 0 and "refused the request" in pushed.stderr


def test_static_folders_are_served_read_only_and_never_escaped(tmp_path):
    import http.client

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    site = tmp_path / "site"
    (site / "c").mkdir(parents=True)
    (site / "index.html").write_text("<h1>shelf</h1>")
    (site / "c" / "page.html").write_text("<p>page</p>")
    (tmp_path / "outside.txt").write_text("private")
    (site / "leak.txt").symlink_to(tmp_path / "outside.txt")
    with serve.start(shelf_path, static={"/": site}) as servers:
        root = servers.http_url.rsplit("/", 1)[0]
        assert requests.get(f"{root}/", timeout=30).text == "<h1>shelf</h1>"
        page = requests.get(f"{root}/c/page.html", timeout=30)
        assert page.text == "<p>page</p>" and page.headers["Content-Type"] == "text/html"
        assert requests.get(f"{root}/leak.txt", timeout=30).status_code == 404
        assert requests.put(f"{root}/c/page.html", data=b"defaced", timeout=30).status_code == 405
        host, port = root.split("//")[1].split(":")
        for raw in ("/../outside.txt", "/c/../../outside.txt", "/%2e%2e/outside.txt", "/.git/config"):
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", raw)
            answer = connection.getresponse()
            assert answer.status == 404 and b"private" not in answer.read(), raw
            connection.close()
        assert git("ls-remote", servers.http_url).returncode == 0  # git's paths still win over the folder
    assert (site / "c" / "page.html").read_text() == "<p>page</p>"


def test_stopping_leaves_no_processes(tmp_path):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    servers = serve.start(shelf_path, url_host="localhost")  # the name clients use, not the address
    pids = [p.pid for p in servers.processes]
    http_port = servers.http_url.split(":")[2].split("/")[0]
    try:
        assert eventually(
            lambda: len(processes_mentioning(f"127.0.0.1:{http_port}")) >= 1 + serve.HTTP_WORKERS
        )
        assert servers.git_url.startswith("git://localhost:") and servers.http_url.startswith(
            "http://localhost:"
        )
        assert servers.lfs_url == f"{servers.http_url}/info/lfs"
        assert listening(servers.git_url) and listening(servers.http_url)
        assert "refs/heads/main" in git("ls-remote", servers.git_url).stdout
    finally:
        servers.stop()
    assert all(p.poll() is not None for p in servers.processes)
    assert all(group_gone(pid) for pid in pids)
    assert not listening(servers.git_url) and not listening(servers.http_url)
    assert processes_mentioning(f"127.0.0.1:{http_port}") == []


def serve_command(
    shelf_path: Path, git_port: int, http_port: int, *extra: str, tmp: Path
) -> subprocess.Popen:
    command = [sys.executable, "-m", "shelf.cli", "serve", str(shelf_path), "--git-port", str(git_port)]
    command += ["--http-port", str(http_port), *extra]
    # Whatever the servers write to temporary files or to the user's home lands in these two folders.
    (tmp.parent / "home").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(tmp.parent / "home"), "XDG_RUNTIME_DIR": ""}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )


def test_serve_prints_role_lines_and_runs_until_terminated(tmp_path):
    from tests.support.git_servers import free_port

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    git_port, http_port = free_port(), free_port()
    (tmp_path / "tmp").mkdir()
    tokens = token_file(tmp_path, TOKEN)
    tokens.chmod(0o644)
    process = serve_command(
        shelf_path, git_port, http_port, "--token-file", str(tokens), tmp=tmp_path / "tmp"
    )
    try:
        lines = [process.stdout.readline().rstrip("\n") for _ in range(4)]
        http_url = f"http://127.0.0.1:{http_port}/team.git"
        assert lines == [
            f"git  git://127.0.0.1:{git_port}/team.git",
            f"http  {http_url}",
            f"lfs  {http_url}/info/lfs",
            f"sparse  sparse+http://127.0.0.1:{http_port}/",
        ]
        assert listening(f"git://127.0.0.1:{git_port}") and listening(f"http://127.0.0.1:{http_port}")
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err and TOKEN not in err
    assert "publish to the http URL with a token" in err
    assert f"warning: other users can read {tokens}; chmod 600 {tokens}" in err  # 0644, set above
    assert not listening(f"git://127.0.0.1:{git_port}") and not listening(f"http://127.0.0.1:{http_port}")
    assert processes_mentioning(f"--port={git_port}") == []  # git daemon and its forked child
    assert processes_mentioning(f"127.0.0.1:{http_port}") == []  # gunicorn and its workers


def test_kill_9_leaves_nothing_listening_nor_any_key_and_a_restart_works(tmp_path):
    from tests.support.git_servers import free_port

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    git_port, http_port = free_port(), free_port()
    (tmp_path / "tmp").mkdir()
    tokens = token_file(tmp_path, TOKEN)
    for attempt in range(2):  # the second run reuses the ports the killed one held
        process = serve_command(
            shelf_path, git_port, http_port, "--token-file", str(tokens), tmp=tmp_path / "tmp"
        )
        try:
            lines = [process.stdout.readline() for _ in range(4)]
            assert lines[3].startswith("sparse  "), (
                attempt,
                lines,
                process.stderr.read() if process.poll() else "",
            )
            children = processes_mentioning(f"127.0.0.1:{http_port}") + processes_mentioning(
                f"--port={git_port}"
            )
            assert len(children) >= 2 + serve.HTTP_WORKERS or eventually(
                lambda: len(processes_mentioning(f"127.0.0.1:{http_port}")) >= 1 + serve.HTTP_WORKERS
            )
            assert "refs/heads/main" in git("ls-remote", f"http://127.0.0.1:{http_port}/team.git").stdout
        finally:
            process.kill()  # SIGKILL: serve gets no chance to clean up
            process.communicate(timeout=30)
        assert eventually(lambda: processes_mentioning(f"127.0.0.1:{http_port}") == [])
        assert eventually(lambda: processes_mentioning(f"--port={git_port}") == [])
        assert not listening(f"git://127.0.0.1:{git_port}") and not listening(f"http://127.0.0.1:{http_port}")
        assert list((tmp_path / "tmp").iterdir()) == []  # no signing key, no config, nothing left behind
        assert list((tmp_path / "home").iterdir()) == []  # no control socket in the user's home


def test_busy_port_is_refused_before_starting(tmp_path):
    from shelf.errors import ConfigError

    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}") as raised:
            serve.start(shelf_path, http_port=port)
    assert raised.value.hint == "choose another port with --http-port"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: cannot read the token file"),
        ("# nothing but a comment\n\n", "error: the token file"),
        ("short\n", "error: token 1 in"),
    ],
)
def test_a_bad_token_file_is_one_line_and_starts_nothing(cli, tmp_path, content, message):
    shelf_path = Path(create_shelf(tmp_path / "team.git"))
    tokens = tmp_path / "tokens"
    if content is not None:
        tokens.write_text(content)
    before = shelf_refs(shelf_path)
    result = cli("serve", shelf_path, "--git-port", "1", "--http-port", "2", "--token-file", tokens)
    assert result.code == 2 and message in result.err and "hint:" in result.err
    assert shelf_refs(shelf_path) == before


def test_a_git_repository_that_is_not_a_shelf_is_refused_untouched(cli, tmp_path):
    repo = bare_repo_with_a_file(tmp_path, "code.git", "notes.txt", "mine\n")
    before = shelf_refs(repo)
    result = cli("serve", repo, "--git-port", "1", "--http-port", "2")
    assert result.code == 2 and "is a git repository but not a shelf" in result.err
    assert shelf_refs(repo) == before  # no .lfsconfig committed into somebody's repository


def test_serving_a_missing_shelf_is_an_error(cli, tmp_path):
    result = cli("serve", tmp_path / "nowhere.git", "--git-port", "1", "--http-port", "2")
    assert result.code == 1 and "error: the shelf" in result.err and "does not exist" in result.err


def test_serve_needs_a_shelf_on_this_machine(cli):
    result = cli("--shelf", "git://example.invalid/shelf.git", "serve")
    assert (
        result.code == 2
        and "error: git://example.invalid/shelf.git is not a shelf on this machine" in result.err
    )
