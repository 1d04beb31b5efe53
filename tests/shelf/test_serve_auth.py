"""Token files and request credentials of a served shelf (``shelf.serve_auth``), and the git helper that
hands ``CCLM_SHELF_TOKEN`` to git (``shelf.gitauth``)."""

from __future__ import annotations

import base64
import subprocess

import pytest

from shelf.errors import ConfigError
from shelf.gitauth import token_credential_env
from shelf.serve_auth import Caller, classify, load_tokens

TOKEN = "a-token-of-enough-length-42"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_token_file_skips_blanks_and_comments_and_keeps_order(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# team\n\n  {TOKEN}  \nsecond-token-0123456789\n{TOKEN}\n")
    assert load_tokens(path) == (TOKEN, "second-token-0123456789")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the token file"),
        ("# only a comment\n", "holds no token"),
        ("too-short\n", "shorter than 16 characters"),
        ("has a space inside it all\n", "holds spaces"),
        (b"\xff\xfe not text", "not UTF-8 text"),
    ],
)
def test_a_bad_token_file_is_a_config_error_naming_it(tmp_path, content, message):
    path = tmp_path / "tokens"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        load_tokens(path)
    assert str(path) in raised.value.message and raised.value.hint


@pytest.mark.parametrize(
    ("header", "caller"),
    [
        (None, Caller.ANONYMOUS),
        ("", Caller.ANONYMOUS),
        (f"Bearer {TOKEN}", Caller.WRITER),
        (f"bearer {TOKEN}", Caller.WRITER),
        (basic("anyone", TOKEN), Caller.WRITER),
        (basic(TOKEN, ""), Caller.REFUSED),  # the token as the user name is not the password
        (f"Bearer {TOKEN}x", Caller.REFUSED),
        (f"Bearer {TOKEN[:-1]}", Caller.REFUSED),
        (basic("anyone", "wrong"), Caller.REFUSED),
        ("Basic !!not-base64!!", Caller.REFUSED),
        (f"Token {TOKEN}", Caller.REFUSED),
    ],
)
def test_requests_are_anonymous_writers_or_refused(header, caller):
    assert classify(header, (TOKEN, "other-token-0123456789")) is caller


def test_git_gets_the_token_from_the_environment_never_from_its_command_line(tmp_path):
    env = {"CCLM_SHELF_TOKEN": TOKEN, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.name"}
    env["GIT_CONFIG_VALUE_0"] = "kept"
    extra = token_credential_env(env)
    assert extra["GIT_CONFIG_COUNT"] == "3" and extra["GIT_CONFIG_KEY_1"] == "credential.helper"
    assert all(TOKEN not in value for value in extra.values())
    full = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env, **extra}
    asked = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=http\nhost=example.invalid\n\n",
        capture_output=True,
        text=True,
        env=full,
        check=True,
    )
    assert f"password={TOKEN}" in asked.stdout and "username=cclm-shelf" in asked.stdout
    assert token_credential_env({"CCLM_SHELF_TOKEN": "  "}) == {}
