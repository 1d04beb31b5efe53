"""The shelf's web pages: exported through the CLI from a real shelf, read by a real headless Chromium."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.shelf.conftest import MLM, publish_folder
from tests.support.browser import dump_dom, screenshot
from tests.support.shelves import add_signature_files

TOKEN = "s3cr3t-token-for-site-tests"
REASON = "trained on the wrong split"


@pytest.fixture
def browsed_shelf(cli, stocked_shelf, saved_models, monkeypatch) -> Path:
    """base 0.1.0, mlm 0.1.0 (yanked with a reason) and mlm 0.2.0 on a real local shelf."""
    publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
    result = cli("--shelf", stocked_shelf, "yank", "mlm@0.1.0", "--reason", REASON)
    assert result.code == 0, result.err
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    return stocked_shelf


def export(cli, shelf: Path, dest: Path, *extra: str):
    result = cli("--shelf", shelf, "export", dest, "--html", *extra)
    assert result.code == 0, result.err
    return result


def embedder_of(shelf_site: Path) -> str:
    pages = sorted((shelf_site / "bases").glob("*.html"))
    assert len(pages) == 1, pages
    return pages[0].stem


def test_export_writes_a_page_per_component_and_base(cli, browsed_shelf, tmp_path):
    site = tmp_path / "site"
    export(cli, browsed_shelf, site)
    written = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    key = embedder_of(site)
    pages = ["components/base.html", "components/mlm.html", "index.html", "style.css"]
    assert written == sorted([f"bases/{key}.html", *pages])
    component = (site / "components" / "mlm.html").read_text(encoding="utf-8")
    assert "cclm-shelf install mlm@v0.2.0" in component and "cclm-shelf install mlm@v0.1.0" in component
    assert REASON in component and "<script" not in component
    base_page = (site / "bases" / f"{key}.html").read_text(encoding="utf-8")
    assert "base 0.1.0" in base_page and "mlm 0.1.0" in base_page and "mlm 0.2.0" in base_page


def test_pages_in_a_real_browser(cli, browsed_shelf, tmp_path):
    site = tmp_path / "site"
    export(cli, browsed_shelf, site)
    profile = tmp_path / "browser"
    front = dump_dom((site / "index.html").as_uri(), profile)
    assert 'href="components/mlm.html"' in front and 'href="components/base.html"' in front
    assert 'mlm</a> <span class="version">0.2.0</span>' in front  # the latest version, not the yanked one
    page = dump_dom((site / "components" / "mlm.html").as_uri(), profile)
    assert '<pre class="install" id="install"><code>cclm-shelf install mlm@v0.2.0</code></pre>' in page
    assert f'<p class="yank-reason">Yanked: {REASON}</p>' in page
    assert '<section class="version is-yanked" id="v0.1.0">' in page
    assert '<section class="version" id="v0.2.0">' in page
    shot = screenshot((site / "components" / "mlm.html").as_uri(), tmp_path / "mlm-phone.png", profile)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (412, 915)


def test_same_shelf_same_bytes_and_nothing_else_touched(cli, browsed_shelf, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "README.txt").write_text("mine\n")
    export(cli, browsed_shelf, site)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in site.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    result = export(cli, browsed_shelf, site, "--json")
    assert result.json()["changed"] == []
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in site.rglob("*") if p.is_file()}
    assert after == before and {p: p.stat().st_mtime_ns for p in before} == mtimes
    assert (site / "README.txt").read_text() == "mine\n"
    other = tmp_path / "elsewhere" / "site"
    export(cli, browsed_shelf, other)
    assert {p.relative_to(other): hashlib.sha256(p.read_bytes()).hexdigest() for p in other.rglob("*.*")} == {
        p.relative_to(site): h for p, h in before.items() if p.name != "README.txt"
    }


def test_pages_carry_no_token_and_no_local_path(cli, browsed_shelf, tmp_path):
    plain, public = tmp_path / "plain", tmp_path / "public"
    export(cli, browsed_shelf, plain)
    url = f"https://alice:{TOKEN}@models.example.org/shelf.git?token={TOKEN}"
    export(cli, browsed_shelf, public, "--shelf-url", url)
    page = (public / "components" / "mlm.html").read_text(encoding="utf-8")
    assert "cclm-shelf --shelf https://models.example.org/shelf.git install mlm@v0.2.0" in page
    for folder in (plain, public):
        for path in folder.rglob("*"):
            data = path.read_bytes() if path.is_file() else b""
            for secret in (TOKEN, str(tmp_path), str(browsed_shelf), str(Path.home()), "alice"):
                assert secret.encode() not in data, (path, secret)


def test_export_mistakes_say_what_to_do(cli, browsed_shelf, tmp_path):
    result = cli("--shelf", browsed_shelf, "export", tmp_path / "site")
    assert result.code == 2 and "names no http(s) LFS server" in result.err and "--with-blobs" in result.err
    assert not (tmp_path / "site").exists()
    pages_only = cli("--shelf", browsed_shelf, "export", tmp_path / "site", "--html")
    assert pages_only.code == 0 and "only the web pages were written" in pages_only.err
    assert not (tmp_path / "site" / "config.json").exists()
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    result = cli("--shelf", browsed_shelf, "export", a_file, "--html")
    assert result.code == 2 and "is a file" in result.err
    assert a_file.read_text() == "x"
    website = tmp_path / "website"  # a folder of the user's with its own front page: never written over
    website.mkdir()
    (website / "index.html").write_text("<html>mine</html>")
    refused = cli("--shelf", browsed_shelf, "export", website, "--html", "--with-blobs")
    assert refused.code == 2
    assert (
        refused.err.splitlines()[0]
        == f"error: {website / 'index.html'} is not a page cclm-shelf wrote; nothing was exported"
    )
    assert [p.name for p in website.iterdir()] == ["index.html"]  # not even the sparse index was written
    assert (website / "index.html").read_text() == "<html>mine</html>"
    (website / "index.html").unlink()
    (website / "config.json").write_text('{"mine": true}')  # the sparse index's config: same rule
    refused = cli("--shelf", browsed_shelf, "export", website, "--with-blobs")
    assert refused.code == 2
    assert refused.err.splitlines()[0] == (
        f"error: {website / 'config.json'} is not the config.json of an export; nothing was exported"
    )
    assert [p.name for p in website.iterdir()] == ["config.json"]
    assert (website / "config.json").read_text() == '{"mine": true}'


def test_an_empty_shelf_has_a_front_page(cli, shelf_path, tmp_path):
    site = tmp_path / "site"
    export(cli, shelf_path, site)
    assert "Nothing is published on this shelf yet." in (site / "index.html").read_text(encoding="utf-8")


def test_a_signed_version_names_its_signer(cli, browsed_shelf, tmp_path):
    from shelf.signing import fingerprint

    files = add_signature_files(browsed_shelf, "mlm", "0.2.0", tmp_path / "signer-cache")
    hint = fingerprint(files["components/mlm/0.2.0/cclm-manifest.pub"]).removeprefix("sha256:")
    site = tmp_path / "site"
    export(cli, browsed_shelf, site)
    page = (site / "components" / "mlm.html").read_text(encoding="utf-8")
    signed, unsigned = page.split('id="v0.1.0"')
    assert f"key {hint}" in signed and "cclm-manifest.sig" in signed
    assert "not signed" in unsigned and hint not in unsigned


def test_live_pages_follow_publishes_and_yanks(cli, stocked_shelf, saved_models, tmp_path):
    from shelf.site.live import LiveSite
    from shelf.source import ShelfSource

    source = ShelfSource(str(stocked_shelf), cache_dir=tmp_path / "server-cache")
    live = LiveSite(source, stocked_shelf, tmp_path / "pages", "git://shelf.example.org/shelf.git")
    assert live.update() is True
    page = tmp_path / "pages" / "components" / "mlm.html"
    assert "cclm-shelf --shelf git://shelf.example.org/shelf.git install mlm@v0.1.0" in page.read_text()
    assert live.update() is False  # nothing moved: nothing read or written
    publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
    assert cli("--shelf", stocked_shelf, "yank", "mlm@0.1.0", "--reason", REASON).code == 0
    assert live.update() is True
    text = page.read_text()
    assert "install mlm@v0.2.0</code></pre>" in text and f"Yanked: {REASON}" in text


def test_what_publishers_write_is_shown_as_text_never_as_markup(cli, shelf_path, saved_models, tmp_path):
    from tests.shelf.conftest import BASE

    summary = '<script>alert("x")</script> & <b>bold</b>'
    published = cli(
        "--shelf", shelf_path, "publish", saved_models / BASE, "--name", "base", "--version", "0.1.0"
    )
    assert published.code == 0, published.err
    result = cli("--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0")
    assert result.code == 0, result.err
    result = cli(
        "--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.2.0",
        "--summary", summary, "--requires", "base==0.1.0",
    )  # fmt: skip
    assert result.code == 0, result.err
    site = tmp_path / "site"
    export(cli, shelf_path, site)
    for page in (site / "index.html", site / "components" / "mlm.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script>" not in text and "<b>" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in text
    component = (site / "components" / "mlm.html").read_text(encoding="utf-8")
    assert '<a href="base.html"><code>base==0.1.0</code></a>' in component
