"""``keygen``: a key pair for signing what is published."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option


@click.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def keygen_cmd(path, as_json):
    """Write a new signing key: PATH (private, mode 0600) and PATH.pub (public, to share).

    \b
    The key is an elliptic-curve P-256 key in PEM, as `openssl ecparam -name prime256v1 -genkey` makes.
    Existing files are never replaced. Sign with `publish --sign-key PATH`; installers trust the
    signatures with `install --trust-key PATH.pub` (or trusted-keys in the project file).

    \b
    Example:
      cclm-shelf keygen team.pem
    """
    from shelf.signing import keygen

    private, public, fingerprint = keygen(path)
    data = {"private_key": str(private), "public_key": str(public), "fingerprint": fingerprint}
    lines = [
        f"private key {private} (keep it secret)",
        f"public key  {public} (share it)",
        f"fingerprint {fingerprint}",
        f"sign:  cclm-shelf publish FOLDER --name NAME --version X.Y.Z --sign-key {private}",
        f"trust: cclm-shelf install NAME@X.Y.Z --trust-key {public}",
    ]
    emit(as_json, data, lines)
