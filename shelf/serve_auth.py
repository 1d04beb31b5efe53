"""Who may write to a served shelf: the holders of a token from ``serve --token-file``.

Anonymous requests read; writes (git pushes, LFS uploads) need a token from the file, one per line (blank
lines and ``#`` comments are skipped). A client sends it as ``Authorization: Bearer <token>`` (what
cclm-shelf sends for ``CCLM_SHELF_TOKEN``) or as the password of HTTP basic auth, any user name (what git and
git-lfs send from netrc or a credential helper). Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from shelf.errors import ConfigError

MIN_TOKEN_LENGTH = 16
_NEW_TOKEN_HINT = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Caller(Enum):
    """What a request's credentials make of its sender."""

    ANONYMOUS = "anonymous"  # no credentials: may read
    WRITER = "writer"  # a token from the file: may read and write
    REFUSED = "refused"  # credentials that match no token: gets nothing


def load_tokens(path: Path) -> tuple[str, ...]:
    """The tokens in ``path``; a ConfigError naming the file when it cannot serve as a token file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise ConfigError(
            f"cannot read the token file {path}: {reason}", hint="give a text file with one token per line"
        ) from None
    tokens = [line.strip() for line in text.splitlines()]
    tokens = [t for t in tokens if t and not t.startswith("#")]
    if not tokens:
        raise ConfigError(f"the token file {path} holds no token", hint=_NEW_TOKEN_HINT)
    for number, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ConfigError(
                f"token {number} in {path} is shorter than {MIN_TOKEN_LENGTH} characters or holds spaces",
                hint=_NEW_TOKEN_HINT,
            )
    return tuple(dict.fromkeys(tokens))


def presented_secret(authorization: str | None) -> str | None:
    """The token a request presents: a bearer token, or a basic-auth password; None when it has none."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def classify(authorization: str | None, tokens: Sequence[str]) -> Caller:
    """Anonymous without credentials, a writer with a known token, refused with anything else."""
    secret = presented_secret(authorization)
    if secret is None:
        return Caller.ANONYMOUS
    given = secret.encode()
    # Every token is compared, so the time taken says nothing about which one came close.
    matches = [hmac.compare_digest(given, token.encode()) for token in tokens]
    return Caller.WRITER if any(matches) else Caller.REFUSED


def giftless_authenticator(tokens: Sequence[str] = ()) -> Any:
    """A giftless authenticator: read for anyone, everything for token holders, 401 for a wrong token.

    giftless's own pre-authorized links (JWTs it signs for each object) are checked before this one. The
    permissions hold for every object of the one served repository (giftless's default identity grants
    repository-wide permissions to batch requests only, not to per-object requests).
    """
    from giftless.auth import Unauthorized
    from giftless.auth.identity import Identity, Permission

    class Holder(Identity):
        def __init__(self, caller: Caller) -> None:
            super().__init__(name=caller.value, id=caller.value)
            writes = caller is Caller.WRITER
            self.permissions = Permission.all() if writes else {Permission.READ, Permission.READ_META}

        def is_authorized(
            self, organization: str, repo: str, permission: Any, oid: str | None = None
        ) -> bool:
            return permission in self.permissions

    def authenticate(request: Any) -> Any:
        caller = classify(request.headers.get("Authorization"), tokens)
        if caller is Caller.REFUSED:
            raise Unauthorized("the token is not one this shelf accepts")
        return Holder(caller)

    return authenticate
