"""The trust policy: which signers an install or a lock accepts, and the check applied to each component.

Trusted public keys come from ``install --trust-key`` (repeatable), ``trusted-keys = [...]`` in the
project file (paths relative to it) and ``CCLM_SHELF_TRUSTED_KEYS`` (paths separated by the OS path
separator), all together. The rules, applied before anything is downloaded or written:

- with trusted keys, every component must carry a valid signature by one of them: an unsigned one, one
  signed by another key, and one whose signature does not match its content are refused;
- with none, a signature that is present is still checked (against the key stored beside it), and a bad
  one is refused; unsigned components install as before;
- a lockfile that recorded a signer for a component refuses the component signed by anyone else (or
  not signed any more), whatever the policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shelf import constants
from shelf.errors import TrustError


class _File(Protocol):
    item: str
    path: str
    sha256: str


class PinnedComponent(Protocol):
    name: str
    version: str
    files: Sequence[_File]


@dataclass(frozen=True)
class TrustPolicy:
    """Trusted keys by fingerprint (PEM bytes as values), and the files they were read from."""

    keys: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.keys)


def load_policy(paths: Iterable[str | Path]) -> TrustPolicy:
    """Read every key file; a missing or unreadable one is a ConfigError naming it."""
    files = [Path(p).expanduser() for p in paths]
    if not files:
        return TrustPolicy()
    from shelf.signing import fingerprint, read_public_key

    keys = {}
    for path in files:
        pem = read_public_key(path)
        keys[fingerprint(pem, str(path))] = pem
    return TrustPolicy(keys)


def env_key_paths() -> list[str]:
    """The key files named by ``CCLM_SHELF_TRUSTED_KEYS`` (OS path separator between them)."""
    raw = os.environ.get(constants.ENV_TRUSTED_KEYS, "")
    return [part for part in raw.split(os.pathsep) if part.strip()]


def policy_for(project_keys: Sequence[Path] = (), extra: Sequence[str | Path] = ()) -> TrustPolicy:
    """The policy of a command: its own ``--trust-key`` options, the project's keys and the environment."""
    return load_policy([*extra, *project_keys, *env_key_paths()])


def check_component(
    component: PinnedComponent,
    manifest: bytes | None,
    signature,
    policy: TrustPolicy,
    locked_signer: str | None = None,
) -> str | None:
    """Check one component against the policy; returns its signer's fingerprint (None when unsigned).

    ``manifest`` is the manifest's bytes as published and ``signature`` a ``shelf.signing.Signature`` or
    None. The signed digests are compared with the files the install would lay out.
    """
    label = f"{component.name} {component.version}"
    if manifest is None:
        if policy.active or locked_signer or signature is not None:
            raise TrustError(
                f"cannot check the signature of {label}: the shelf does not have its locked manifest",
                hint="drop --offline so the shelf can be read, or lock again (cclm-shelf lock)",
            )
        return None
    if signature is None:
        _check_unsigned(label, policy, locked_signer)
        return None
    from shelf.signing import signature_hint, signed_digests, verify

    digests = signed_digests(manifest, [(f.item, f.path, f.sha256) for f in component.files])
    claimed = signature_hint(signature.bundle) or _stored_signer(signature)
    key = None
    if policy.active:
        key = policy.keys.get(claimed)
        if key is None:
            raise TrustError(
                f"{label} is signed by an unknown key {_short(claimed)}, not by a trusted one",
                hint=f"trust that key only if you know whose it is (--trust-key); trusted: {_listed(policy)}",
            )
    try:
        signer = verify(signature, digests, key)
    except TrustError as e:
        raise TrustError(f"refusing {label}: {e.message}", hint=_BAD_HINT) from e
    _check_locked(label, signer, locked_signer)
    return signer


def _stored_signer(signature) -> str:
    """The fingerprint of the key stored beside a signature, or a placeholder when it is not a key."""
    from shelf.errors import ConfigError

    try:
        return signature.signer
    except ConfigError:
        return "(a key that is not a usable public key)"


def check_published_files(
    components: Iterable[PinnedComponent], metadata: Mapping[str, bytes], policy: TrustPolicy
) -> None:
    """Check components whose manifests and signatures are given by their shelf paths (a bundle's)."""
    from registry_index import layout
    from shelf.signing import Signature

    for component in components:
        sig, pub = layout.signature_paths(component.name, component.version)
        signature = Signature(metadata[sig], metadata.get(pub, b"")) if sig in metadata else None
        manifest = metadata.get(layout.manifest_path(component.name, component.version))
        check_component(component, manifest, signature, policy, getattr(component, "signer", None))


def signature_status(component: PinnedComponent, manifest: bytes, signature, policy: TrustPolicy) -> dict:
    """What ``show`` says about a version's signature: ``{"signer": ..., "status": ...}``, never raising."""
    if signature is None:
        return {"signer": None, "status": "unsigned"}
    try:
        signer = check_component(component, manifest, signature, TrustPolicy())
    except TrustError as e:
        return {"signer": None, "status": f"BAD: {e.message}"}
    if not policy.active:
        return {"signer": signer, "status": "valid"}
    trusted = "trusted" if signer in policy.keys else "NOT a trusted key"
    return {"signer": signer, "status": f"valid, {trusted}"}


_BAD_HINT = "the shelf's copy was changed after it was signed; ask the publisher, install nothing from it"


def _check_unsigned(label: str, policy: TrustPolicy, locked_signer: str | None) -> None:
    if locked_signer:
        raise TrustError(
            f"{label} is not signed any more; the lockfile says {_short(locked_signer)} signed it",
            hint="someone replaced the published version; ask the publisher before re-locking",
        )
    if policy.active:
        raise TrustError(
            f"{label} is unsigned, and only components signed by a trusted key may be installed",
            hint="ask the publisher to sign it (publish --sign-key), or drop the trust policy",
        )


def _check_locked(label: str, signer: str, locked_signer: str | None) -> None:
    if locked_signer and signer != locked_signer:
        raise TrustError(
            f"{label} is now signed by {_short(signer)}, but the lockfile says {_short(locked_signer)}",
            hint="a published version was re-signed by another key; ask the publisher before re-locking",
        )


def _short(fingerprint: str) -> str:
    return fingerprint[: len("sha256:") + 16] if fingerprint.startswith("sha256:") else fingerprint


def _listed(policy: TrustPolicy) -> str:
    return ", ".join(_short(k) for k in sorted(policy.keys)) or "none"
