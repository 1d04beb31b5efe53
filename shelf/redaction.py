"""Scrubbing secrets out of text: the one ``redact`` every message, log line and repr goes through.

It hides Authorization values, bearer and basic credentials, token-like query parameters (``?token=``,
``jwt=``, signatures), the user-info part of every URL (``https://***@host``), the environment token and
any secret passed to it. Light on purpose: importing it costs nothing, so git paths use it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shelf import constants

_MASK = "***"
_PATTERNS = (
    # "Authorization: Bearer abc", "'Authorization': 'Basic abc'", JSON or header dumps alike.
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+|basic\s+|token\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)(\b(?:jwt|token|access_token|password|secret|sig|signature|x-amz-signature)=)[^&#\s'\",]+"
    ),
    # The whole user-info part of a URL: a token may stand where the user name goes.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s]+(@)"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential-looking part, and every given secret, replaced by ``***``."""
    for secret in [*secrets, constants.token() or ""]:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    for pattern in _PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{_MASK}{m.group(2)}", text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: f"{m.group(1)}{_MASK}", text)
        else:
            text = pattern.sub(_MASK, text)
    return text
