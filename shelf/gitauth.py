"""``CCLM_SHELF_TOKEN`` for git over HTTP: pushing to a served shelf with the token as the password.

git asks its credential helpers for a user name and password when an HTTP remote answers 401. With the
token set, git runs are given one more helper, first in line, that answers with the token: the token is
read from the environment by the helper itself, so it never appears in a command line. Without it, git
finds credentials as it always does (netrc, the user's credential helpers).
"""

from __future__ import annotations

from collections.abc import Mapping

from shelf import constants

TOKEN_USER = "cclm-shelf"
# A shell one-liner git runs as `<helper> get|store|erase`; only `get` answers.
_HELPER = (
    '!f() { test "$1" = get && '
    f'printf "username={TOKEN_USER}\\npassword=%s\\n" "${constants.ENV_TOKEN}"; }}; f'
)


def token_credential_env(env: Mapping[str, str]) -> dict[str, str]:
    """Variables that give git runs in ``env`` the token helper; empty when no token is set."""
    if not env.get(constants.ENV_TOKEN, "").strip():
        return {}
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    # An empty credential.helper empties the list: the token comes first, as it does for LFS requests.
    pairs = [("credential.helper", ""), ("credential.helper", _HELPER)]
    extra = {}
    for i, (key, value) in enumerate(pairs):
        extra[f"GIT_CONFIG_KEY_{count + i}"] = key
        extra[f"GIT_CONFIG_VALUE_{count + i}"] = value
    extra["GIT_CONFIG_COUNT"] = str(count + len(pairs))
    return extra
