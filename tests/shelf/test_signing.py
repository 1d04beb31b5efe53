"""Signed publishes verified at install: keys, the trust policy, the lockfile's signer, tampered shelves.

Everything is real: keys made by ``cclm-shelf keygen`` and by openssl, model-signing's own signer and
verifier, bare git shelves, and an attacker who pushes a consistent replacement straight to the shelf.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry_index import layout
from registry_index.index import entry_from_manifest, format_index_file
from registry_index.manifest import Manifest, dump_manifest, manifest_digest
from registry_index.pointer import LfsPointer, format_pointer
from shelf.errors import ConfigError, TrustError
from shelf.signing import (
    Signature,
    fingerprint,
    keygen,
    read_public_key,
    sign,
    signed_digests,
    signer_fingerprint,
    verify,
)
from shelf.source import ShelfSource
from tests.shelf.conftest import BASE, MLM, publish_args, publish_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path) -> dict[str, tuple[Path, Path]]:
    """Two key pairs: the publisher's and somebody else's."""
    folder = tmp_path / "keys"
    folder.mkdir()
    made = {}
    for who in ("team", "other"):
        private, public, _fp = keygen(folder / f"{who}.pem")
        made[who] = (private, public)
    return made


@pytest.fixture
def signed_shelf(shelf_path, saved_models, keys):
    """base 0.1.0 and mlm 0.1.0, both signed with the team key."""
    for folder, name, requires in ((BASE, "base", ()), (MLM, "mlm", ("base==0.1.0",))):
        report = _publish(shelf_path, saved_models / folder, name, "0.1.0", requires, keys["team"][0])
        assert report.commit
    return shelf_path


def _publish(shelf_url, folder, name, version, requires=(), sign_key=None):
    from shelf.api import Shelf
    from shelf.publish import PackageInfo, publish

    shelf = Shelf(str(shelf_url))
    info = PackageInfo(name, version, requires=tuple(requires))
    return publish(folder, info, shelf.source(), shelf.store, sign_key=sign_key)


def _show(shelf: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={shelf}", "show", f"main:{path}"], capture_output=True, check=True
    ).stdout


# --- keys ----------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_replaces_one(tmp_path):
    private, public, fp = keygen(tmp_path / "k.pem")
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert public == tmp_path / "k.pem.pub"
    assert fingerprint(public.read_bytes()) == fp == signer_fingerprint(private)
    with pytest.raises(ConfigError, match="is a private key"):
        read_public_key(private)
    before = private.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        keygen(tmp_path / "k.pem")
    assert private.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pem.pub"]  # no debris


def test_openssl_keys_sign_and_verify(tmp_path):
    private = tmp_path / "ossl.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", private], check=True
    )
    public = tmp_path / "ossl.pub"
    subprocess.run(
        ["openssl", "ec", "-in", private, "-pubout", "-out", public], check=True, capture_output=True
    )
    digests = signed_digests(b"{}\n", [("model", "w.h5", "ab" * 32)])
    signature = sign("x", digests, private)
    assert verify(signature, digests, public.read_bytes()) == fingerprint(public.read_bytes())


def test_keys_that_cannot_sign_are_refused_with_a_reason(tmp_path):
    rsa = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genrsa", "-out", rsa, "2048"], check=True, capture_output=True)
    rsa_pub = tmp_path / "rsa.pub"
    subprocess.run(
        ["openssl", "rsa", "-in", rsa, "-pubout", "-out", rsa_pub], check=True, capture_output=True
    )
    text = tmp_path / "notes.txt"
    text.write_text("not a key")
    for path, reason in ((rsa_pub, "not an elliptic-curve key"), (text, "not a PEM public key")):
        with pytest.raises(ConfigError, match=reason):
            read_public_key(path)
    for path, reason in ((rsa, "not an elliptic-curve key"), (text, "not a PEM private key")):
        with pytest.raises(ConfigError, match=reason):
            signer_fingerprint(path)
    with pytest.raises(ConfigError, match="cannot read the key"):
        read_public_key(tmp_path / "missing.pem")


def test_model_signing_and_our_verifier_agree(tmp_path, keys):
    """Our cryptography-only verifier accepts what model-signing's verifier accepts, refuses the rest."""
    import model_signing

    folder = tmp_path / "comp"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "w.h5").write_bytes(b"weights")
    (folder / "cclm-manifest.json").write_bytes(b'{"x":1}\n')
    digests = signed_digests(b'{"x":1}\n', [("model", "w.h5", hashlib.sha256(b"weights").hexdigest())])
    signature = sign("comp", digests, keys["team"][0])
    (folder / layout.SIGNATURE_NAME).write_bytes(signature.bundle)
    (folder / layout.PUBLIC_KEY_NAME).write_bytes(signature.public_key)
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys["team"][1])
    config.verify(folder, folder / layout.SIGNATURE_NAME)
    assert verify(signature, digests, keys["team"][1].read_bytes()).startswith("sha256:")

    (folder / "model" / "w.h5").write_bytes(b"altered")
    with pytest.raises(ValueError, match="Hash mismatch"):
        config.verify(folder, folder / layout.SIGNATURE_NAME)
    altered = dict(digests, **{"model/w.h5": hashlib.sha256(b"altered").hexdigest()})
    with pytest.raises(TrustError, match="does not match the content"):
        verify(signature, altered)
    other = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys["other"][1])
    with pytest.raises(ValueError, match="Key mismatch"):
        other.verify(folder, folder / layout.SIGNATURE_NAME)
    with pytest.raises(TrustError, match="another key"):
        verify(signature, digests, keys["other"][1].read_bytes())


def test_a_forged_envelope_is_refused(keys):
    import base64
    import json

    digests = signed_digests(b"{}\n", [])
    signature = sign("x", digests, keys["team"][0])
    bundle = json.loads(signature.bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = Signature(json.dumps(bundle).encode(), signature.public_key)
    with pytest.raises(TrustError, match="not made by this key"):
        verify(forged, digests)
    with pytest.raises(TrustError, match="not a model-signing bundle"):
        verify(Signature(b"garbage", signature.public_key), digests)


# --- publish and install -------------------------------------------------------------------------------


def test_publish_says_who_signed(shelf_path, saved_models, keys, cli):
    args = (*publish_args(saved_models / BASE, "base"), "--sign-key", keys["team"][0])
    result = cli("--shelf", shelf_path, *args, "--json")
    assert result.code == 0, result.err
    assert result.json()["signer"] == fingerprint(keys["team"][1].read_bytes())


def test_signed_publish_stores_the_bundle_beside_the_manifest(signed_shelf, keys, tmp_path):
    sig, pub = layout.signature_paths("mlm", "0.1.0")
    bundle = _show(signed_shelf, sig)
    assert _show(signed_shelf, pub) == read_public_key(keys["team"][1])
    manifest = _show(signed_shelf, layout.manifest_path("mlm", "0.1.0"))
    parsed = Manifest.from_validated_bytes(manifest)
    digests = signed_digests(manifest, [(i, f.path, f.sha256) for i, f in parsed.files()])
    assert verify(Signature(bundle, b""), digests, keys["team"][1].read_bytes()) == fingerprint(
        keys["team"][1].read_bytes()
    )
    # Plain git files, not LFS pointers: the shelf's .gitattributes leaves them alone.
    assert b"git-lfs" not in bundle


def test_install_with_the_trusted_key_records_the_signer(signed_shelf, keys, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "installed"
    result = cli(
        "--shelf", signed_shelf, "install", "mlm@0.1.0", "--trust-key", keys["team"][1], "--target", target
    )
    assert result.code == 0, result.err
    assert (target / "mlm" / "component" / "component.weights.h5").is_file()
    (tmp_path / "cclm-shelf.toml").write_text(
        f'shelves = ["{signed_shelf}"]\nrequires = ["mlm==0.1.0"]\ntrusted-keys = ["keys/team.pem.pub"]\n'
    )
    assert cli("lock").code == 0
    lock = (tmp_path / "cclm-shelf.lock").read_text()
    expected = fingerprint(keys["team"][1].read_bytes())
    assert lock.count(f'signer = "{expected}"') == 2


def test_show_says_who_signed(signed_shelf, keys, cli, monkeypatch):
    shown = cli("--shelf", signed_shelf, "show", "mlm@0.1.0", "--json").json()["signature"]
    assert shown == {"signer": fingerprint(keys["team"][1].read_bytes()), "status": "valid"}
    monkeypatch.setenv("CCLM_SHELF_TRUSTED_KEYS", str(keys["other"][1]))
    text = cli("--shelf", signed_shelf, "show", "mlm@0.1.0").out
    assert "signed by sha256:" in text and "NOT a trusted key" in text


def test_another_key_is_refused_before_anything_is_written(signed_shelf, keys, cli, tmp_path):
    target = tmp_path / "installed"
    result = cli(
        "--shelf", signed_shelf, "install", "mlm@0.1.0", "--trust-key", keys["other"][1], "--target", target
    )
    assert result.code == 1
    assert "signed by an unknown key" in result.err and (
        "mlm 0.1.0" in result.err or "base 0.1.0" in result.err
    )
    assert not target.exists()


def test_an_unsigned_component_under_a_policy_is_refused(
    shelf_path,
    saved_models,
    keys,
    cli,
    tmp_path,
    monkeypatch,
):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    monkeypatch.setenv("CCLM_SHELF_TRUSTED_KEYS", os.pathsep.join(str(k[1]) for k in keys.values()))
    target = tmp_path / "installed"
    result = cli("--shelf", shelf_path, "install", "base@0.1.0", "--target", target)
    assert result.code == 1
    assert "base 0.1.0 is unsigned" in result.err
    assert not target.exists()
    monkeypatch.delenv("CCLM_SHELF_TRUSTED_KEYS")
    assert cli("--shelf", shelf_path, "install", "base@0.1.0", "--target", target).code == 0


def test_a_public_key_cannot_sign_and_nothing_is_hashed(
    shelf_path, saved_models, keys, cli, monkeypatch, tmp_path
):
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "cache"))
    result = cli(
        "--shelf", shelf_path, *publish_args(saved_models / BASE, "b"), "--sign-key", keys["team"][1]
    )
    assert result.code == 2 and "is not a PEM private key" in result.err
    assert "hashing" not in result.err
    assert not (tmp_path / "cache" / "blobs").exists()


def test_a_missing_trusted_key_file_is_a_clear_error(signed_shelf, cli, tmp_path):
    result = cli("--shelf", signed_shelf, "install", "mlm@0.1.0", "--trust-key", tmp_path / "nope.pub")
    assert result.code == 2 and "cannot read the key" in result.err


# --- an attacker with push access but without the key ----------------------------------------------------


def _replace_weights(shelf: Path, cache: Path, new_bytes: bytes, resign: Path | None = None) -> None:
    """Push a consistent replacement of mlm 0.1.0 straight to the shelf: blob, pointer, manifest, index."""
    source = ShelfSource(str(shelf), cache_dir=cache)
    source.refresh()
    entry = source.entry("mlm", "0.1.0")
    manifest, _data = source.manifest(entry)
    oid = hashlib.sha256(new_bytes).hexdigest()
    blob = shelf / layout.lfs_object_path(oid)
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(new_bytes)
    data = manifest.to_dict()
    for f in data["items"]["component"]["files"]:
        if f["path"] == "component.weights.h5":
            f.update(sha256=oid, size=len(new_bytes))
    forged = Manifest.from_dict(data)
    raw = dump_manifest(forged)
    changes = {
        layout.manifest_path("mlm", "0.1.0"): raw,
        layout.file_path("mlm", "0.1.0", "component", "component.weights.h5"): format_pointer(
            LfsPointer(oid, len(new_bytes))
        ),
        layout.index_path("mlm"): format_index_file([entry_from_manifest(forged, manifest_digest(raw))]),
    }
    if resign is not None:
        digests = signed_digests(raw, [(i, f.path, f.sha256) for i, f in forged.files()])
        signature = sign("mlm", digests, resign)
        sig, pub = layout.signature_paths("mlm", "0.1.0")
        changes |= {sig: signature.bundle, pub: signature.public_key}
    source.mirror.commit_and_push(changes, "replace mlm", parent=source.head, branch=source.branch)


def test_a_consistent_replacement_without_the_key_is_refused(signed_shelf, keys, cli, tmp_path, monkeypatch):
    _replace_weights(signed_shelf, tmp_path / "attacker", b"backdoored weights")
    target = tmp_path / "installed"
    for policy in ([], ["--trust-key", keys["team"][1]]):
        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / f"cache{len(policy)}"))
        result = cli("--shelf", signed_shelf, "install", "mlm@0.1.0", "--target", target, *policy)
        assert result.code == 1, result.out
        assert "refusing mlm 0.1.0" in result.err and "does not match the content" in result.err
        assert "component/component.weights.h5" in result.err
        assert not target.exists()


def test_a_replacement_re_signed_by_another_key_is_refused_by_the_policy(
    signed_shelf, keys, cli, tmp_path, monkeypatch
):
    _replace_weights(signed_shelf, tmp_path / "attacker", b"backdoored weights", resign=keys["other"][0])
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-cache"))  # a machine that never saw it
    target = tmp_path / "installed"
    result = cli(
        "--shelf", signed_shelf, "install", "mlm@0.1.0", "--trust-key", keys["team"][1], "--target", target
    )
    assert result.code == 1
    assert (
        "mlm 0.1.0 is signed by an unknown key " + fingerprint(keys["other"][1].read_bytes())[:23]
        in result.err
    )
    assert not target.exists()


def _re_sign_only(shelf: Path, cache: Path, key: Path) -> None:
    """Replace only the signature of mlm 0.1.0 (same manifest, same bytes) by one made with ``key``."""
    source = ShelfSource(str(shelf), cache_dir=cache)
    source.refresh()
    manifest, raw = source.manifest(source.entry("mlm", "0.1.0"))
    signature = sign("mlm", signed_digests(raw, [(i, f.path, f.sha256) for i, f in manifest.files()]), key)
    sig, pub = layout.signature_paths("mlm", "0.1.0")
    changes = {sig: signature.bundle, pub: signature.public_key}
    source.mirror.commit_and_push(changes, "re-sign mlm", parent=source.head, branch=source.branch)


def test_the_lockfile_refuses_a_version_re_signed_by_another_key(
    signed_shelf, keys, cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cclm-shelf.toml").write_text(f'shelves = ["{signed_shelf}"]\nrequires = ["mlm==0.1.0"]\n')
    assert cli("install").code == 0  # no policy: locks, records the signer, installs
    lock_before = (tmp_path / "cclm-shelf.lock").read_bytes()
    _re_sign_only(signed_shelf, tmp_path / "attacker", keys["other"][0])
    # Without any policy, the lockfile still knows who signed: the re-signed version is refused.
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-cache"))
    result = cli("install", "--target", tmp_path / "t2")
    assert result.code == 1, result.out
    assert "mlm 0.1.0 is now signed by" in result.err and "but the lockfile says" in result.err
    assert not (tmp_path / "t2").exists()
    assert (tmp_path / "cclm-shelf.lock").read_bytes() == lock_before


# --- what a plain command imports ----------------------------------------------------------------------

_PROBE = """
import sys
from pathlib import Path
from shelf.api import Shelf
from shelf.publish import PackageInfo, publish
shelf = Shelf(sys.argv[1])
publish(Path(sys.argv[2]), PackageInfo("base", "0.1.0"), shelf.source(), shelf.store)
Shelf(sys.argv[1]).install("base@0.1.0", target=Path(sys.argv[3]))
print(sorted({m.split(".")[0] for m in sys.modules} & {"model_signing", "sigstore", "cryptography"}))
"""


def test_plain_publish_and_install_do_not_import_the_signing_stack(shelf_path, saved_models, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CCLM_SHELF_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("CCLM_SHELF_TRUSTED_KEYS", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(shelf_path), str(saved_models / BASE), str(tmp_path / "t")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_installing_a_signed_component_does_not_import_model_signing(signed_shelf, keys, tmp_path):
    code = (
        "import sys\nfrom shelf.api import Shelf\n"
        "Shelf(sys.argv[1]).install('mlm@0.1.0', target=sys.argv[2])\n"
        "print('model_signing' in sys.modules)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CCLM_SHELF_CACHE_DIR": str(tmp_path / "cache"),
        "CCLM_SHELF_TRUSTED_KEYS": str(keys["team"][1]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(signed_shelf), str(tmp_path / "t")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_bundle_carries_the_signatures_and_the_policy_applies_to_it(
    signed_shelf, keys, cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cclm-shelf.toml").write_text(f'shelves = ["{signed_shelf}"]\nrequires = ["mlm==0.1.0"]\n')
    assert cli("lock").code == 0
    bundle = tmp_path / "stack.cclm-bundle"
    assert cli("bundle", bundle).code == 0
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "offline-machine"))
    target = tmp_path / "installed"
    refused = cli(
        "--offline", "install", "--bundle", bundle, "--trust-key", keys["other"][1], "--target", target
    )
    assert refused.code == 1 and "signed by an unknown key" in refused.err
    assert not target.exists()
    accepted = cli(
        "--offline", "install", "--bundle", bundle, "--trust-key", keys["team"][1], "--target", target
    )
    assert accepted.code == 0, accepted.err
    assert (target / "mlm" / "component" / "component.weights.h5").is_file()


def test_the_signature_covers_the_base_requirement_publish_adds(shelf_path, saved_models, keys, tmp_path):
    from shelf.api import Shelf
    from shelf.trust import load_policy

    _publish(shelf_path, saved_models / BASE, "base", "0.1.0", sign_key=keys["team"][0])
    report = _publish(shelf_path, saved_models / MLM, "mlm", "0.1.0", sign_key=keys["team"][0])
    assert report.requires_added == "base==0.1.0"
    trusted = Shelf(str(shelf_path), cache_dir=tmp_path / "cache", trust=load_policy([keys["team"][1]]))
    installed = trusted.install("mlm@0.1.0", target=tmp_path / "target")
    assert sorted(installed.installed) == [("base", "0.1.0"), ("mlm", "0.1.0")]


def test_the_trusted_key_decides_never_the_one_stored_beside_the_signature(keys):
    from types import SimpleNamespace

    from shelf.trust import TrustPolicy, check_component, load_policy

    files = [SimpleNamespace(item="model", path="w.h5", sha256="ab" * 32)]
    component = SimpleNamespace(name="x", version="0.1.0", files=files)
    raw = b"{}\n"
    good = sign("x", signed_digests(raw, [("model", "w.h5", "ab" * 32)]), keys["team"][0])
    team = fingerprint(keys["team"][1].read_bytes())
    assert check_component(component, raw, good, TrustPolicy()) == team
    damaged = Signature(good.bundle, b"not a key")
    with pytest.raises(TrustError, match="not a usable public key"):
        check_component(component, raw, damaged, TrustPolicy())  # no policy: the stored key is all there is
    assert check_component(component, raw, damaged, load_policy([keys["team"][1]])) == team
    with pytest.raises(TrustError, match="unknown key"):
        check_component(component, raw, good, load_policy([keys["other"][1]]))
    # The other key's owner stores its own key beside the team's bundle: the bundle still names the team.
    swapped = Signature(good.bundle, keys["other"][1].read_bytes())
    with pytest.raises(TrustError, match="another key"):
        check_component(component, raw, swapped, TrustPolicy())
