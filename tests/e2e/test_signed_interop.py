"""Signatures survive ``serve``, mirrors and the original git-lfs client, untouched.

A version signed at publish is served (git daemon + giftless), installed under a trust policy from
another cache, and checked out by the real git-lfs client: model-signing's own verifier accepts the
checked-out component folder with the key, and refuses it once one byte is changed.
"""

from __future__ import annotations

import pytest

from registry_index import layout
from shelf.api import Shelf
from shelf.errors import TrustError
from shelf.publish import PackageInfo, publish
from shelf.signing import keygen
from shelf.trust import load_policy
from tests.e2e.test_publish_interop import lfs_clone
from tests.shelf.conftest import BASE, MLM, saved_models  # noqa: F401 - shared fixture
from tests.support.served import served_lfs_shelf


@pytest.mark.network
def test_a_signed_version_survives_serve_mirrors_and_git_lfs(tmp_path, saved_models, monkeypatch):  # noqa: F811
    import model_signing

    private, public, _fp = keygen(tmp_path / "team.pem")
    other = keygen(tmp_path / "other.pem")[1]
    with served_lfs_shelf(tmp_path, "signed-interop-token-0123456789", monkeypatch) as servers:
        publisher = Shelf(servers.http_url, cache_dir=tmp_path / "publisher")
        for folder, name in ((BASE, "base"), (MLM, "mlm")):
            info = PackageInfo(name, "0.1.0")
            publish(saved_models / folder, info, publisher.source(), publisher.store, sign_key=private)
        monkeypatch.delenv("CCLM_SHELF_TOKEN")

        trusted = Shelf(servers.git_url, cache_dir=tmp_path / "installer", trust=load_policy([public]))
        report = trusted.install("mlm@0.1.0", target=tmp_path / "target")
        assert sorted(report.installed) == [("base", "0.1.0"), ("mlm", "0.1.0")]
        stranger = Shelf(servers.git_url, cache_dir=tmp_path / "stranger", trust=load_policy([other]))
        with pytest.raises(TrustError, match="unknown key"):
            stranger.install("mlm@0.1.0", target=tmp_path / "not-trusted")
        assert not (tmp_path / "not-trusted").exists()

        checkout = lfs_clone(servers.git_url, tmp_path / "checkout", tmp_path / "home")
    folder = checkout / layout.component_dir("mlm", "0.1.0")
    signature = folder / layout.SIGNATURE_NAME
    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public)
    verifier.verify(folder, signature)  # the git-lfs checkout is exactly what was signed
    weights = folder / "component" / "component.weights.h5"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="Hash mismatch"):
        verifier.verify(folder, signature)
