"""Signatures of published versions: OpenSSF model signing bundles over a manifest and its files' digests.

A signed publish stores two small files beside the manifest in the shelf commit::

    components/<name>/<version>/cclm-manifest.sig   the model-signing bundle (Sigstore bundle, DSSE envelope)
    components/<name>/<version>/cclm-manifest.pub   the signer's public key (PEM)

The signed in-toto statement lists, as model-signing's "files" serialization does, every file of the
installed component folder with its sha256: ``cclm-manifest.json`` itself and ``<item>/<path>`` for each
file the manifest names. The digests come from the manifest, so signing re-hashes nothing, and the
signature covers exactly the bytes an install verifies. An installed folder can be checked by
model-signing's own verifier too (the signature files are listed as ignored paths).

A key's fingerprint is ``sha256:`` and the hex digest of its PEM SubjectPublicKeyInfo: the same value
model-signing writes into the bundle as the public key hint.

Signing imports ``model_signing`` (about a second: the sigstore stack). Verifying, which every install of
a signed component does, needs only ``cryptography``: it checks the DSSE envelope's ECDSA signature and the
statement's digests exactly as model-signing's key verifier does, and the tests hold the two to the same
answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_index.layout import MANIFEST_NAME, PUBLIC_KEY_NAME, SIGNATURE_NAME
from shelf.errors import ConfigError, TrustError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# What model-signing's verifier must skip when it hashes an installed folder.
IGNORED_PATHS = (SIGNATURE_NAME, PUBLIC_KEY_NAME)


@dataclass(frozen=True)
class Signature:
    """A signature as stored on a shelf: the bundle bytes and the signer's public key (PEM)."""

    bundle: bytes
    public_key: bytes

    @property
    def signer(self) -> str:
        """The fingerprint of the key the shelf says signed (checked by ``verify``)."""
        return fingerprint(self.public_key)


def signed_digests(manifest_bytes: bytes, files: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """``{path in the installed folder: sha256 hex}`` for the manifest and every (item, path, sha256)."""
    digests = {MANIFEST_NAME: hashlib.sha256(manifest_bytes).hexdigest()}
    digests.update({f"{item}/{path}": sha256 for item, path, sha256 in files})
    return dict(sorted(digests.items()))


# --- keys ----------------------------------------------------------------------------------------------


def _public_key(pem: bytes, where: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{where} is not a PEM public key", hint="pass the .pub file that `cclm-shelf keygen` wrote"
        ) from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise ConfigError(
            f"{where} is not an elliptic-curve key on P-256, P-384 or P-521",
            hint="make one with `cclm-shelf keygen PATH` or `openssl ecparam -name prime256v1 -genkey`",
        )
    return key


_CURVES = {"secp256r1": "SHA256", "secp384r1": "SHA384", "secp521r1": "SHA512"}


def _spki_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public_pem: bytes, where: str = "the public key") -> str:
    """``sha256:<hex>`` of the key's PEM SubjectPublicKeyInfo (model-signing's key hint)."""
    return "sha256:" + hashlib.sha256(_spki_pem(_public_key(public_pem, where))).hexdigest()


def read_public_key(path: Path) -> bytes:
    """The PEM public key in ``path``, normalised. A private key is refused: it is not to be shared."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        raise ConfigError(
            f"{path} is a private key; trust needs only the public one",
            hint=f"pass {Path(path).name}.pub (from `cclm-shelf keygen`) or `openssl ec -pubout`",
        )
    return _spki_pem(_public_key(data, str(path)))


def signer_fingerprint(private_key: Path) -> str:
    """The fingerprint of a signing key's public half; a bad private key is a ConfigError."""
    return "sha256:" + hashlib.sha256(_spki_pem(_private_key(private_key).public_key())).hexdigest()


def _read_key_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the key {path}: {e.strerror}", hint="check the path") from e


def _private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as e:
        raise ConfigError(
            f"{path} is protected by a password", hint="sign with a key without a password"
        ) from e
    except ValueError as e:
        raise ConfigError(
            f"{path} is not a PEM private key", hint="make one with `cclm-shelf keygen PATH`"
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise ConfigError(
            f"{path} is not an elliptic-curve key on P-256, P-384 or P-521",
            hint="make one with `cclm-shelf keygen PATH` or `openssl ecparam -name prime256v1 -genkey`",
        )
    return key


def keygen(path: Path) -> tuple[Path, Path, str]:
    """Write a new P-256 private key to ``path`` (mode 0600) and its public key to ``path.pub``.

    Existing files are never replaced. Returns both paths and the key's fingerprint.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path)
    public = path.with_name(path.name + ".pub")
    for existing in (path, public):
        if existing.exists() or existing.is_symlink():
            raise ConfigError(f"{existing} already exists", hint=_KEEP_KEYS)
    if not path.parent.is_dir():
        raise ConfigError(f"no folder {path.parent} for the key", hint="create it first or pick another path")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _create_new(path, private_pem, 0o600)
    _create_new(public, _spki_pem(key.public_key()), 0o644)
    return path, public, fingerprint(_spki_pem(key.public_key()))


_KEEP_KEYS = "choose another path; keys are never replaced"


def _create_new(path: Path, data: bytes, mode: int) -> None:
    from shelf.fsutil import atomic_create

    try:
        atomic_create(path, data, mode=mode)
    except FileExistsError as e:
        raise ConfigError(f"{path} already exists", hint=_KEEP_KEYS) from e


# --- signing (model_signing) ---------------------------------------------------------------------------


def sign(name: str, digests: Mapping[str, str], private_key: Path) -> Signature:
    """Sign ``digests`` (see ``signed_digests``) with model-signing's elliptic-curve key signer."""
    key = _private_key(private_key)  # clear errors for bad keys before the slow import
    from model_signing import manifest as ms_manifest
    from model_signing._hashing import hashing as ms_hashing
    from model_signing._signing import sign_ec_key, signing

    serialization = ms_manifest._FileSerialization("sha256", False, [Path(p) for p in IGNORED_PATHS])
    items = [
        serialization.new_item(path, ms_hashing.Digest("sha256", bytes.fromhex(digest)))
        for path, digest in digests.items()
    ]
    payload = signing.Payload(ms_manifest.Manifest(name, items, serialization))
    signed = sign_ec_key.Signer(Path(private_key)).sign(payload)
    bundle = signed.bundle.to_json().encode("utf-8")  # type: ignore[attr-defined]  # a sigstore_pb.Signature
    return Signature(bundle, _spki_pem(key.public_key()))


# --- verifying (cryptography only) ---------------------------------------------------------------------


def verify(signature: Signature, digests: Mapping[str, str], key: bytes | None = None) -> str:
    """Check ``signature`` against the expected ``digests``; returns the signer's fingerprint.

    ``key`` (a trusted PEM public key) is used when given, else the key stored with the signature. Raises
    TrustError saying why: the bundle is unreadable, the signature is not by the key, or the signed
    content is not these digests.
    """
    if key is not None:
        public = _public_key(key, "the trusted key")
    else:
        try:
            public = _public_key(signature.public_key, "the key stored with the signature")
        except ConfigError as e:
            raise TrustError(f"{e.message} (it is not a usable public key)") from e
    envelope, hint = _envelope(signature.bundle)
    if hint and hint != hashlib.sha256(_spki_pem(public)).hexdigest():
        raise TrustError("the signature names another key than the one it was checked with")
    payload = _checked_payload(envelope, public)
    signed = _statement_digests(payload)
    if signed != dict(digests):
        raise TrustError(f"the signature does not match the content ({_difference(signed, digests)})")
    return "sha256:" + hashlib.sha256(_spki_pem(public)).hexdigest()


def signature_hint(bundle: bytes) -> str | None:
    """The fingerprint the bundle names (unchecked), for saying which unknown key signed."""
    try:
        _envelope_data, hint = _envelope(bundle)
    except TrustError:
        return None
    return f"sha256:{hint}" if hint else None


def _envelope(bundle: bytes) -> tuple[Mapping[str, Any], str | None]:
    try:
        data = json.loads(bundle.decode("utf-8"))
        envelope = data["dsseEnvelope"]
        hint = (data.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise TrustError("the signature file is not a model-signing bundle") from e
    if not isinstance(envelope, Mapping):
        raise TrustError("the signature file is not a model-signing bundle")
    return envelope, hint if isinstance(hint, str) else None


def _checked_payload(envelope: Mapping[str, Any], public) -> dict[str, Any]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = base64.b64decode(envelope["payload"], validate=True)
        sig = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        payload_type = envelope["payloadType"]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise TrustError("the signature's envelope is incomplete") from e
    if payload_type != PAYLOAD_TYPE:
        raise TrustError(f"the signature carries {payload_type!r}, not an in-toto statement")
    pae = b" ".join([f"DSSEv1 {len(PAYLOAD_TYPE)} {PAYLOAD_TYPE} {len(raw)}".encode(), raw])
    try:
        public.verify(sig, pae, ec.ECDSA(getattr(hashes, _CURVES[public.curve.name])()))
    except InvalidSignature as e:
        raise TrustError("the signature was not made by this key, or the signed statement was altered") from e
    try:
        return json.loads(raw)
    except ValueError as e:
        raise TrustError("the signed statement is not JSON") from e


def _statement_digests(payload: Mapping[str, Any]) -> dict[str, str]:
    """The digests a verified statement lists, after the checks model-signing makes on it."""
    try:
        if payload["_type"] != STATEMENT_TYPE or payload["predicateType"] != PREDICATE_TYPE:
            raise TrustError("the signed statement is not a model-signing v1.0 statement")
        resources = payload["predicate"]["resources"]
        root = hashlib.sha256()
        digests = {}
        for resource in resources:
            if resource["algorithm"] != "sha256":
                raise TrustError(f"the signature uses {resource['algorithm']}, not sha256")
            root.update(bytes.fromhex(resource["digest"]))
            digests[resource["name"]] = resource["digest"]
        (subject,) = payload["subject"]
        if subject["digest"]["sha256"] != root.hexdigest():
            raise TrustError("the signed statement is inconsistent (its root digest does not match)")
    except (KeyError, TypeError, ValueError) as e:
        raise TrustError("the signed statement is malformed") from e
    return dict(sorted(digests.items()))


def _difference(signed: Mapping[str, str], expected: Mapping[str, str]) -> str:
    changed = sorted(k for k in signed.keys() & expected.keys() if signed[k] != expected[k])
    missing = sorted(expected.keys() - signed.keys())
    extra = sorted(signed.keys() - expected.keys())
    parts = [
        f"{what}: {', '.join(names[:3])}"
        for what, names in (("changed", changed), ("not signed", missing), ("signed but absent", extra))
        if names
    ]
    return "; ".join(parts)
