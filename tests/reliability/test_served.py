"""A served shelf under attack and under ``kill -9``: nobody writes without a token, nobody reads beside it,
a killed ``serve`` leaves nothing running, and lost blobs come back with a second publish.

Every trial runs the real ``cclm-shelf serve`` (git daemon + gunicorn + giftless + git http-backend), the
real git client and the package's own publish. Counts: ``trials(ci, full)``; figures go to RELIABILITY.md.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.reliability.conftest import record, trials
from tests.reliability.kit import cli_env, git_fsck
from tests.support.git_servers import free_port
from tests.support.processes import (
    descendants,
    eventually,
    port_listening,
    processes_mentioning,
    still_running,
)

TOKEN = "reliability-team-token-0123456789"
WRONG = "reliability-wrong-token-0123456789"
SEED_BASE = 20261202
RERUN = "scripts/reliability.py --only served"


def _git(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=120)


def _refs(repo: Path) -> str:
    return _git(f"--git-dir={repo}", "for-each-ref", "--format=%(refname) %(objectname)").stdout


def _objects(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "lfs" / "objects").rglob("*") if p.is_file())


def _cclm(
    *args: str, cache: Path, token: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    env = cli_env(CCLM_SHELF_CACHE_DIR=str(cache))
    env.pop("CCLM_SHELF_TOKEN", None)
    if token:
        env["CCLM_SHELF_TOKEN"] = token
    command = [sys.executable, "-m", "shelf.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _publish_args(url: str, folder: Path, version: str, name: str = "tiny_base") -> list[str]:
    """``--shelf URL publish FOLDER --name NAME --version VERSION``."""
    return ["--shelf", url, "publish", str(folder), "--name", name, "--version", version]


@dataclass
class Served:
    """One ``cclm-shelf serve`` process on fixed ports, and the team's repositories beside the shelf."""

    shelf: Path
    sibling: Path
    tokens: Path
    tmp: Path
    git_port: int
    http_port: int
    process: subprocess.Popen | None = None
    tree: set[int] = field(default_factory=set)

    @property
    def git_url(self) -> str:
        return f"git://127.0.0.1:{self.git_port}/{self.shelf.name}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/{self.shelf.name}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "shelf.cli",
            "serve",
            str(self.shelf),
            "--token-file",
            str(self.tokens),
        ]
        command += ["--git-port", str(self.git_port), "--http-port", str(self.http_port)]
        home = self.tmp.parent / "serve-home"  # nothing of serve's may land in the user's home
        home.mkdir(exist_ok=True)
        env = cli_env(TMPDIR=str(self.tmp), HOME=str(home), XDG_RUNTIME_DIR="")
        env["CCLM_SHELF_CACHE_DIR"] = str(self.tmp.parent / "serve-cache")
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines = [self.process.stdout.readline() for _ in range(4)]
        assert lines[3].startswith("sparse  "), lines

    def kill(self) -> None:
        """``kill -9`` of serve alone (not its process group), remembering every process it had started."""
        if self.process is not None and self.process.poll() is None:
            self.tree = descendants(self.process.pid)
            self.process.kill()
            self.process.wait()

    def left(self) -> list[int]:
        """Ids of the processes serve had started that still run, and of any still serving its git port.

        Clients are not counted: a client's own helper (``git remote-http http://127.0.0.1:PORT/...``)
        names the port too, and it ends on its own time once its server is gone."""
        return still_running(self.tree) + processes_mentioning(f"--port={self.git_port}")

    def gone(self) -> bool:
        """Nothing of the killed server runs or listens, and it left no file behind."""
        quiet = eventually(lambda: not self.left(), timeout=20.0)
        return (
            quiet
            and not port_listening(self.git_port)
            and not port_listening(self.http_port)
            and not any(self.tmp.iterdir())
            and not any((self.tmp.parent / "serve-home").iterdir())
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    from shelf.source import create_shelf

    shelf = Path(create_shelf(tmp_path / "team.git"))
    sibling = tmp_path / "secrets.git"
    seed = tmp_path / "seed"
    assert _git("init", "-q", "--bare", str(sibling)).returncode == 0
    assert _git("init", "-q", str(seed)).returncode == 0
    (seed / "password.txt").write_text("hunter2-the-secret\n")
    assert _git("add", ".", cwd=seed).returncode == 0
    assert _git("commit", "-qm", "secret", cwd=seed, env=_identity()).returncode == 0
    assert _git("push", "-q", str(sibling), "HEAD:refs/heads/main", cwd=seed).returncode == 0
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    (tmp_path / "tmp").mkdir()
    served = Served(shelf, sibling, tokens, tmp_path / "tmp", free_port(), free_port())
    served.start()
    try:
        yield served
    finally:
        served.kill()


def _identity() -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }


def _with_user(url: str, password: str) -> str:
    return url.replace("http://", f"http://intruder:{password}@")


def _lfs_upload(served: Served, authorization: str | None, expected: int) -> bool:
    """The batch answers ``expected``, and a PUT straight to the object's URL is refused too."""
    oid = hashlib.sha256(b"planted").hexdigest()
    headers = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 7}]}
    answer = requests.post(
        f"{served.http_url}/info/lfs/objects/batch", json=body, headers=headers, timeout=30
    )
    direct = requests.put(
        f"http://127.0.0.1:{served.http_port}/cclm/{served.shelf.name}/info/lfs/objects/storage/{oid}",
        data=b"planted",
        headers={"Authorization": authorization} if authorization else {},
        timeout=30,
    )
    return answer.status_code == expected and direct.status_code in (401, 403)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A saved embedder package (built once per session by tests.support.shelves)."""
    from tests.support.shelves import saved_stack

    return saved_stack(tmp_path_factory).base


def test_nobody_writes_without_a_token(served: Served, folder: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    assert _git("clone", "-q", served.http_url, str(checkout)).returncode == 0
    assert (
        _git("commit", "-q", "--allow-empty", "-m", "planted", cwd=checkout, env=_identity()).returncode == 0
    )
    basic_wrong = "Basic " + base64.b64encode(f"x:{WRONG}".encode()).decode()
    sibling_http = served.http_url.replace("team.git", "secrets.git")
    attacks: dict[str, Callable[[], bool]] = {
        "git push over HTTP, no token": lambda: (
            _git("push", served.http_url, "HEAD:refs/heads/x", cwd=checkout).returncode != 0
        ),
        "git push over HTTP, wrong token": lambda: (
            _git("push", _with_user(served.http_url, WRONG), "HEAD:refs/heads/x", cwd=checkout).returncode
            != 0
        ),
        "git push over git://, no token": lambda: (
            _git("push", served.git_url, "HEAD:refs/heads/x", cwd=checkout).returncode != 0
        ),
        "git push over git://, with the token": lambda: (
            _git(
                "push", served.git_url, "HEAD:refs/heads/x", cwd=checkout, env={"CCLM_SHELF_TOKEN": TOKEN}
            ).returncode
            != 0
        ),
        "git push to a sibling, with the token": lambda: (
            _git("push", _with_user(sibling_http, TOKEN), "HEAD:refs/heads/x", cwd=checkout).returncode != 0
        ),
        "git push to a sibling over git://": lambda: (
            _git(
                "push", served.git_url.replace("team.git", "secrets.git"), "HEAD:refs/heads/x", cwd=checkout
            ).returncode
            != 0
        ),
        "LFS upload, no token": lambda: _lfs_upload(served, None, 403),
        "LFS upload, wrong bearer token": lambda: _lfs_upload(served, f"Bearer {WRONG}", 401),
        "LFS upload, wrong basic password": lambda: _lfs_upload(served, basic_wrong, 401),
        "cclm-shelf publish, no token": lambda: _refused_publish(served, folder, tmp_path, None),
        "cclm-shelf publish, wrong token": lambda: _refused_publish(served, folder, tmp_path, WRONG),
    }
    rounds = trials(1, 5)
    for name, attack in attacks.items():
        ok = 0
        for _ in range(rounds):
            before = (_refs(served.shelf), _refs(served.sibling), _objects(served.shelf))
            ok += attack() and (_refs(served.shelf), _refs(served.sibling), _objects(served.shelf)) == before
        record("served", f"refused: {name}", rounds, ok, RERUN)
        assert ok == rounds, name
    publish = _cclm(*_publish_args(served.http_url, folder, "0.1.0"), cache=tmp_path / "pub", token=TOKEN)
    record("served", "accepted: cclm-shelf publish with the token", 1, int(publish.returncode == 0), RERUN)
    assert publish.returncode == 0, publish.stderr
    git_fsck(served.shelf)


def _refused_publish(served: Served, folder: Path, tmp_path: Path, token: str | None) -> bool:
    """Refused in one `error:` line naming the shelf, no traceback, the token nowhere in the output."""
    args = _publish_args(served.http_url, folder, "6.6.6", name="intruder")
    done = _cclm(*args, cache=tmp_path / "intruder", token=token)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    named = len(errors) == 1 and served.shelf.name in errors[0]
    secret = token is not None and token in done.stdout + done.stderr
    return done.returncode == 1 and named and "Traceback" not in done.stderr and not secret


def test_nobody_reads_beside_the_shelf(served: Served, tmp_path: Path) -> None:
    http_root = f"http://127.0.0.1:{served.http_port}"
    reads = {
        "git clone of the shelf over git://": (served.git_url, True),
        "git clone of the shelf over HTTP": (served.http_url, True),
        "git clone of a sibling over git://": (served.git_url.replace("team.git", "secrets.git"), False),
        "git clone of a sibling over HTTP": (served.http_url.replace("team.git", "secrets.git"), False),
        "git clone of a sibling over HTTP with the token": (
            _with_user(served.http_url, TOKEN).replace("team.git", "secrets.git"),
            False,
        ),
        "git clone of team.git/../secrets.git over git://": (served.git_url + "/../secrets.git", False),
        "git clone of team.git/../secrets.git over HTTP": (served.http_url + "/../secrets.git", False),
        "git clone of the parent folder over git://": (f"git://127.0.0.1:{served.git_port}/", False),
    }
    rounds = trials(1, 5)
    for name, (url, allowed) in reads.items():
        ok = 0
        for attempt in range(rounds):
            dest = tmp_path / f"clone-{abs(hash(name))}-{attempt}"
            done = _git("clone", "-q", url, str(dest))
            leaked = dest.exists() and any(
                "hunter2" in p.read_text(errors="ignore") for p in dest.rglob("*.txt")
            )
            ok += (done.returncode == 0) == allowed and not leaked
        record("served", f"{'allowed' if allowed else 'refused'}: {name}", rounds, ok, RERUN)
        assert ok == rounds, name
    paths = [
        "/team.git/config",
        "/team.git/HEAD",
        "/team.git/objects/info/packs",
        "/secrets.git/info/refs?service=git-upload-pack",
        "/team.git/%2e%2e/secrets.git/info/refs?service=git-upload-pack",
        "/team.git/info/lfs/../../secrets.git/config",
        "/../secrets.git/config",
        "/../../../../etc/passwd",
        "/%2e%2e/secrets.git/config",
        "/etc/passwd",
        "/components/../../secrets.git/config",
    ]
    ok = 0
    for path in paths:
        connection = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=30)
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        connection.close()
        ok += (
            answer.status == 404 and b"hunter2" not in body and b"[core]" not in body and b"root:" not in body
        )
    record(
        "served",
        "refused: raw HTTP paths beside git's protocol and the pages (config, dumb HTTP, ../, /etc/passwd)",
        len(paths),
        ok,
        RERUN,
    )
    assert ok == len(paths)
    front = requests.get(http_root, timeout=30)  # the root shows the shelf's web pages, and only them
    assert front.status_code == 200 and "<h1>Components</h1>" in front.text and "hunter2" not in front.text


def test_kill_9_of_serve_leaves_nothing_and_a_restart_works(
    served: Served, folder: Path, tmp_path: Path
) -> None:
    count = trials(3, 20)
    ok = busy = 0
    for trial in range(count):
        rng = random.Random(SEED_BASE + trial)
        during = rng.choice(["idle", "clone", "publish"])
        child = None
        if during == "clone":
            child = subprocess.Popen(
                ["git", "clone", "-q", served.http_url, str(tmp_path / f"c{trial}")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elif during == "publish":
            env = cli_env(CCLM_SHELF_CACHE_DIR=str(tmp_path / f"p{trial}"), CCLM_SHELF_TOKEN=TOKEN)
            command = [
                sys.executable,
                "-m",
                "shelf.cli",
                *_publish_args(served.http_url, folder, f"0.2.{trial}"),
            ]
            child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 2.0))
        busy += child is not None and child.poll() is None
        served.kill()
        if child is not None:
            child.wait(timeout=180)
        print(f"serve kill trial {trial}: seed {SEED_BASE + trial}, during {during}")
        clean = served.gone()
        served.start()  # the same ports, right away
        reads = "refs/heads/main" in _git("ls-remote", served.http_url).stdout
        git_fsck(served.shelf)
        fsck = _cclm("fsck", str(served.shelf), cache=tmp_path / "fsck")
        if not (clean and reads and fsck.returncode == 0):
            files = list(served.tmp.iterdir())
            print(f"  FAILED: clean {clean} (left {served.left()}, files {files}), reads {reads}")
            print(f"  fsck {fsck.returncode}: {fsck.stdout[-500:]} {fsck.stderr[-500:]}")
        ok += clean and reads and fsck.returncode == 0
    record(
        "served",
        f"kill -9 of serve, idle or mid-clone or mid-publish ({busy} busy), then restart on the same ports",
        count,
        ok,
        RERUN,
    )
    assert ok == count


def test_lost_blobs_are_named_and_restored_by_publishing_again(
    served: Served, folder: Path, tmp_path: Path
) -> None:
    publish = _publish_args(served.http_url, folder, "1.0.0")
    assert _cclm(*publish, cache=tmp_path / "pub", token=TOKEN).returncode == 0
    objects = sorted((served.shelf / "lfs" / "objects").rglob("*"))
    objects = [p for p in objects if p.is_file()]
    count = trials(2, 10)
    ok = 0
    for trial in range(count):
        rng = random.Random(SEED_BASE + 500 + trial)
        victim = rng.choice(objects)
        if rng.random() < 0.5:
            victim.unlink()
            state = "missing"
        else:
            victim.chmod(0o644)
            data = bytearray(victim.read_bytes())
            data[rng.randrange(len(data))] ^= 0xFF
            victim.write_bytes(bytes(data))
            state = "damaged"
        named = _cclm("fsck", str(served.shelf), cache=tmp_path / "fsck")
        again = _cclm(*publish, cache=tmp_path / f"again{trial}", token=TOKEN)
        after = _cclm("fsck", str(served.shelf), cache=tmp_path / "fsck")
        ok += (
            named.returncode == 1
            and f"{state}  tiny_base 1.0.0" in named.stdout
            and "restored 1 object(s)" in again.stdout
            and after.returncode == 0
            and hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name
        )
    record(
        "served", "a missing or damaged blob: fsck names it, a second publish restores it", count, ok, RERUN
    )
    assert ok == count
