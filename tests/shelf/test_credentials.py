"""Credential lookup (token, netrc, git credential helpers) and redaction, against real git and giftless."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPBasicAuth

from shelf.credentials import BearerAuth, auth_for, git_credential_fill
from shelf.lfs import LfsClient, LfsObject, transport_for
from shelf.progress import NullProgress, RichProgress, make_progress
from shelf.redaction import redact
from shelf.store import BlobStore
from tests.support.giftless import GiftlessServer, jwt_giftless_fixture


@pytest.fixture(autouse=True)
def _no_user_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the user's netrc and git credential helpers out; return a private git config file."""
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


@pytest.fixture(scope="module")
def jwt_giftless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiftlessServer]:
    yield from jwt_giftless_fixture(tmp_path_factory)


def _use_credential_store(config: Path, store_file: Path, url: str) -> None:
    store_file.write_text(url + "\n")
    config.write_text(f"[credential]\n\thelper = store --file={store_file}\n")


def test_redact_scrubs_every_kind_of_secret() -> None:
    text = (
        "GET http://h/o/x?jwt=eyJ.abc.def&filename=a failed; {'Authorization': 'Bearer s3cr3t'} "
        "https://user:hunter22@h/p Basic dXNlcjpwdw== token=abcdef my-own-secret"
    )
    clean = redact(text, secrets=["my-own-secret"])
    for secret in ("eyJ.abc.def", "s3cr3t", "hunter22", "dXNlcjpwdw==", "abcdef", "my-own-secret"):
        assert secret not in clean
    assert "filename=a" in clean and "https://***@h/p" in clean  # the user name may itself be a token


def test_redact_knows_the_environment_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCLM_SHELF_TOKEN", "plain-token-value")
    assert redact("the server said: plain-token-value is wrong") == "the server said: *** is wrong"


def test_bearer_auth_sets_the_header_and_hides_the_token() -> None:
    prepared = requests.Request("GET", "http://example.invalid/", auth=BearerAuth("tok-123")).prepare()
    assert prepared.headers["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(BearerAuth("tok-123"))


def test_token_from_the_environment_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no-netrc").write_text("machine example.com login u password p\n")
    monkeypatch.setenv("CCLM_SHELF_TOKEN", "env-token")
    assert auth_for("https://example.com/org/shelf.git/info/lfs") == BearerAuth("env-token")


def test_netrc_is_used_by_host(tmp_path: Path) -> None:
    (tmp_path / "no-netrc").write_text("machine example.com login alice password wonderland\n")
    found = auth_for("https://example.com/org/shelf.git/info/lfs", use_git=False)
    assert isinstance(found, HTTPBasicAuth) and (found.username, found.password) == ("alice", "wonderland")
    assert auth_for("https://other.example.org/x", use_git=False) is None


def test_git_credential_helper_is_asked(tmp_path: Path, _no_user_credentials: Path) -> None:
    _use_credential_store(_no_user_credentials, tmp_path / "creds", "https://bob:builder@example.com")
    assert git_credential_fill("https://example.com/org/shelf.git/info/lfs") == ("bob", "builder")
    found = auth_for("https://example.com/org/shelf.git/info/lfs")
    assert isinstance(found, HTTPBasicAuth) and found.username == "bob"


def test_no_credentials_never_prompts() -> None:
    started = time.monotonic()
    assert auth_for("https://nobody.example.com/org/shelf.git/info/lfs") is None
    assert git_credential_fill("ssh://example.com/x") is None
    assert time.monotonic() - started < 10


@pytest.mark.network
def test_git_credentials_open_a_jwt_server(
    jwt_giftless: GiftlessServer, tmp_path: Path, _no_user_credentials: Path
) -> None:
    """giftless takes a JWT as the password of the user ``_jwt``: a git helper can hold it."""
    token = jwt_giftless.mint_token("org", "helper")
    url = f"http://_jwt:{token}@127.0.0.1:{jwt_giftless.port}"
    _use_credential_store(_no_user_credentials, tmp_path / "creds", url)
    data = b"weights from a private shelf"
    obj = LfsObject(hashlib.sha256(data).hexdigest(), len(data))
    (tmp_path / "w.bin").write_bytes(data)
    client = transport_for(jwt_giftless.base_url + "/org/helper.git")
    assert isinstance(client, LfsClient)
    assert client.upload([(obj, tmp_path / "w.bin")]).uploaded == (obj.oid,)
    store = BlobStore(tmp_path / "store")
    client.download([obj], store)
    assert store.path(obj.oid).read_bytes() == data


def test_progress_reporters() -> None:
    assert isinstance(make_progress(False), NullProgress)
    shown = make_progress(True)
    assert isinstance(shown, RichProgress)
    shown.close()
    bars = RichProgress()
    bars.start("a" * 64, 10, initial=2)
    bars.advance("a" * 64, 8)
    bars.advance("missing", 1)  # unknown keys are ignored, not errors
    bars.finish("a" * 64)
    bars.close()
