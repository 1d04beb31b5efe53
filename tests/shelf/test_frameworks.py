"""A manifest's framework specifiers against what this machine has installed (read with ``packaging``)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest

from shelf.errors import ConfigError
from shelf.frameworks import installed_manifest, installed_version, manifest_problems, problems, require


def test_installed_versions_come_from_distribution_metadata() -> None:
    assert installed_version("packaging") == version("packaging")
    assert installed_version("cclm-core") == version("cclm-shelf")  # the core ships inside cclm-shelf
    assert installed_version("surely-not-an-installed-distribution") is None


def test_met_specifiers_have_no_problem() -> None:
    assert problems({"packaging": ">=20", "cclm-core": ">=0.1"}, "a 1.0.0") == []


def test_each_unmet_specifier_is_one_line_naming_the_component() -> None:
    found = problems(
        {"packaging": ">=999", "surely-not-installed": ">=1", "keras": "not a specifier"}, "mlm 0.1.0"
    )
    assert found == [
        "mlm 0.1.0 declares keras 'not a specifier', which is not a version specifier",
        f"mlm 0.1.0 needs packaging>=999, but packaging {version('packaging')} is installed",
        "mlm 0.1.0 needs surely-not-installed>=1, which is not installed",
    ]


def test_manifest_bytes_and_installed_manifests(tmp_path: Path) -> None:
    manifest = json.dumps({"framework": {"packaging": ">=999"}}).encode()
    assert len(manifest_problems(manifest, "x")) == 1
    assert manifest_problems(None, "x") == [] and manifest_problems(b"{}", "x") == []
    item = tmp_path / "mlm" / "component"
    item.mkdir(parents=True)
    (tmp_path / "mlm" / "cclm-manifest.json").write_bytes(manifest)
    assert installed_manifest(item) == manifest and installed_manifest(tmp_path) is None


def test_require_is_a_config_error_with_a_hint() -> None:
    require({"ok": json.dumps({"framework": {"packaging": ">=1"}}).encode(), "none": None})
    with pytest.raises(ConfigError, match="needs packaging>=999") as info:
        require({"mlm": json.dumps({"framework": {"packaging": ">=999"}}).encode()})
    assert "pip install" in (info.value.hint or "")


def test_met_specifiers_are_remembered_until_an_import_path_changes(tmp_path: Path, monkeypatch) -> None:
    import os

    import shelf.frameworks as frameworks

    site = tmp_path / "site-packages"
    site.mkdir()
    os.utime(site, (1_000_000_000, 1_000_000_000))
    monkeypatch.syspath_prepend(str(site))
    verdicts = tmp_path / "cache" / "framework-checks"
    met = json.dumps({"framework": {"packaging": ">=1"}}).encode()
    unmet = json.dumps({"framework": {"packaging": ">=999"}}).encode()
    assert manifest_problems(met, "a 1.0.0", verdicts) == [] and len(list(verdicts.iterdir())) == 1
    assert len(manifest_problems(unmet, "b 1.0.0", verdicts)) == 1
    assert len(list(verdicts.iterdir())) == 1  # only a met set is remembered: a warning is said every time

    checked: list[str] = []
    monkeypatch.setattr(frameworks, "problems", lambda framework, label: checked.append(label) or [])
    assert manifest_problems(met, "a 1.0.0", verdicts) == [] and checked == []
    (site / "keras-9.0.0.dist-info").mkdir()  # what installing a distribution there does
    assert manifest_problems(met, "a 1.0.0", verdicts) == [] and checked == ["a 1.0.0"]
