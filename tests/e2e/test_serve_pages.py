"""``cclm-shelf serve`` shows the shelf's web pages at its HTTP root, and keeps them current."""

# ruff: noqa: F811 - the shared fixtures are imported by name for pytest

from __future__ import annotations

import signal

import pytest
import requests

from tests.e2e.test_serve import eventually, serve_command
from tests.shelf.conftest import (  # noqa: F401 - shared fixtures
    MLM,
    cli,
    publish_folder,
    saved_models,
    shelf_path,
    stocked_shelf,
)
from tests.support.browser import dump_dom
from tests.support.git_servers import free_port

pytestmark = pytest.mark.network

REASON = "trained on the wrong split"


def test_serve_shows_the_pages_and_follows_a_publish_and_a_yank(cli, stocked_shelf, saved_models, tmp_path):
    git_port, http_port = free_port(), free_port()
    (tmp_path / "tmp").mkdir()
    process = serve_command(stocked_shelf, git_port, http_port, tmp=tmp_path / "tmp")
    root = f"http://127.0.0.1:{http_port}"
    git_url = f"git://127.0.0.1:{git_port}/{stocked_shelf.name}"
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[2].startswith("lfs  "), lines
        front = requests.get(f"{root}/", timeout=10)
        assert front.status_code == 200 and front.headers["Content-Type"].startswith("text/html")
        assert 'href="components/mlm.html"' in front.text
        page = requests.get(f"{root}/components/mlm.html", timeout=10).text
        assert f"cclm-shelf --shelf {git_url} install mlm@v0.1.0" in page
        assert requests.get(f"{root}/style.css", timeout=10).status_code == 200
        assert requests.put(f"{root}/index.html", data=b"x", timeout=10).status_code == 405
        # A publish and a yank on the served shelf reach the pages without a restart.
        publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
        assert cli("--shelf", stocked_shelf, "yank", "mlm@0.1.0", "--reason", REASON).code == 0

        def updated() -> bool:
            text = requests.get(f"{root}/components/mlm.html", timeout=10).text
            return "install mlm@v0.2.0</code></pre>" in text and f"Yanked: {REASON}" in text

        assert eventually(updated, timeout=60)
        dom = dump_dom(f"{root}/components/mlm.html", tmp_path / "browser")  # a real browser, over HTTP
        assert f'<p class="yank-reason">Yanked: {REASON}</p>' in dom
        assert str(tmp_path) not in dom and str(stocked_shelf) not in dom
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err and "warning" not in err, err
