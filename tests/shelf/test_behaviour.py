"""Behaviour probes: recorded at publish, compared by ``verify --behaviour`` and ``compose --check``.

The failure path is real: the check runs in a subprocess whose Keras Dense layer computes something else
(as a changed library would), and under the second Keras installed beside the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cclm_core.probes import (
    PROBE_STRINGS,
    TOLERANCE,
    compare,
    probe_embeddings,
    probe_ids,
    summarize,
)
from registry_index.manifest import load_manifest
from shelf.errors import IntegrityError
from tests.shelf.conftest import BASE, MLM, publish_args

ROOT = Path(__file__).resolve().parents[2]
OTHER_KERAS = Path(sys.prefix) / "keras-3.10.0"


def test_probe_inputs_are_fixed_and_in_range():
    ids = probe_ids(16, 30)
    assert ids.shape == (len(PROBE_STRINGS), 16) and ids.dtype == np.int32
    assert ids.min() == 0 and ids.max() < 30  # padding, then ids inside the vocabulary
    assert (ids[:, 0][:-1] >= 4).all()  # characters never map to the reserved ids
    assert (probe_ids(16, 30) == ids).all()
    emb = probe_embeddings(16, 8)
    assert emb.shape == (len(PROBE_STRINGS), 16, 8) and emb.dtype == np.float32
    assert emb.min() >= -1.0 and emb.max() < 1.0
    assert emb[0, 0, 0] == pytest.approx(probe_embeddings(16, 8)[0, 0, 0], abs=0)


def test_compare_names_the_probe_that_deviates_most():
    outputs = np.linspace(-2, 2, len(PROBE_STRINGS) * 4 * 3).reshape(len(PROBE_STRINGS), 4, 3)
    recorded = summarize(outputs)
    assert compare(recorded, summarize(outputs)) == (0, 0.0)
    shifted = outputs.copy()
    shifted[2] += 0.01
    probe, deviation = compare(recorded, summarize(shifted))
    assert probe == 2 and deviation == pytest.approx(0.01, rel=1e-3)
    assert compare(recorded, summarize(outputs[:, :2]))[1] == float("inf")  # another shape


def test_an_embedder_saved_with_its_component_is_probed_composed_too(saved_models):
    from cclm_core.probes import record

    recorded = record({"embedder": saved_models / BASE / "embedder", "component": saved_models / MLM})
    assert recorded is not None and sorted(recorded["outputs"]) == ["component", "composed", "embedder"]
    composed = recorded["outputs"]["composed"][0]
    assert composed["shape"] == [*recorded["outputs"]["embedder"][0]["shape"][:1], 8]
    assert record({"preprocessor": saved_models / BASE / "preprocessor"}) is None  # nothing computes


@pytest.fixture
def probed_shelf(shelf_path, saved_models, cli):
    """base 0.1.0 and mlm 0.1.0 published with probes through the CLI."""
    for folder, name, extra in ((BASE, "base", []), (MLM, "mlm", ["--requires", "base==0.1.0"])):
        args = ("--shelf", shelf_path, "publish", saved_models / folder, "--name", name, "--version", "0.1.0")
        result = cli(*args, *extra, "--probes")
        assert result.code == 0, result.err
    return shelf_path


def _manifest(shelf: Path, name: str) -> dict:
    data = subprocess.run(
        ["git", f"--git-dir={shelf}", "show", f"main:components/{name}/0.1.0/cclm-manifest.json"],
        capture_output=True,
        check=True,
    ).stdout
    load_manifest(data)  # valid against the schema, probes included
    return json.loads(data)


def test_publish_records_probes_for_every_item_that_computes(probed_shelf):
    base = _manifest(probed_shelf, "base")["probes"]
    mlm = _manifest(probed_shelf, "mlm")["probes"]
    assert sorted(base["outputs"]) == ["embedder"] and sorted(mlm["outputs"]) == ["component"]
    assert base["set"] == 1 and base["tolerance"] == TOLERANCE
    assert len(mlm["outputs"]["component"]) == len(PROBE_STRINGS)
    first = mlm["outputs"]["component"][0]
    assert first["shape"][-1] == 8 and len(first["sample"]) == 8 and len(first["digest"]) == 16


def test_publishing_twice_records_the_same_probes(probed_shelf, saved_models, cli):
    again = cli("--shelf", probed_shelf, *publish_args(saved_models / BASE, "base"), "--probes")
    assert again.code == 0 and "identical content" in again.out


def _install(cli, shelf: Path, target: Path) -> None:
    assert cli("--shelf", shelf, "install", "mlm@0.1.0", "--target", target).code == 0


def test_verify_behaviour_passes_on_the_same_stack(probed_shelf, cli, tmp_path):
    target = tmp_path / "installed"
    _install(cli, probed_shelf, target)
    result = cli("verify", "--target", target, "--behaviour", "--json")
    assert result.code == 0, result.out + result.err
    rows = result.json()["behaviour"]
    assert {(r["name"], r["item"]) for r in rows} == {("base", "embedder"), ("mlm", "component")}
    assert all(r["ok"] and r["deviation"] <= r["tolerance"] for r in rows)
    checked = cli("compose", "--target", target, "--check")
    assert checked.code == 0 and "behaves as published" in checked.out


def _run_check(target: Path, env_extra: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        + prelude
        + "from shelf.cli import main\nsys.exit(main(['verify', '--behaviour', '--target', sys.argv[1]]))\n"
    )
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, env=env)


_ALTERED_DENSE = """
import keras
_call = keras.layers.Dense.call
keras.layers.Dense.call = lambda self, x, *a, **k: _call(self, x, *a, **k) * 1.05 + 0.01
"""


def test_an_altered_layer_is_caught_and_named(probed_shelf, cli, tmp_path):
    target = tmp_path / "installed"
    _install(cli, probed_shelf, target)
    done = _run_check(target, {"PYTHONPATH": str(ROOT)}, _ALTERED_DENSE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DRIFT mlm 0.1.0 component: largest deviation" in done.stdout
    assert "ok    base 0.1.0 embedder" in done.stdout  # the embedder has no Dense layer: unchanged
    assert "1 item(s) behave differently" in done.stderr and "Traceback" not in done.stderr
    print(done.stdout)


def test_the_check_runs_under_the_other_keras(probed_shelf, cli, tmp_path):
    assert OTHER_KERAS.is_dir(), f"scripts/setup.sh installs Keras 3.10 at {OTHER_KERAS}"
    target = tmp_path / "installed"
    _install(cli, probed_shelf, target)
    env = {"PYTHONPATH": os.pathsep.join([str(OTHER_KERAS), str(ROOT)])}
    done = _run_check(target, env, "import keras\nassert keras.__version__ == '3.10.0', keras.__version__\n")
    # The probes of these layers agree across the two Keras versions: the check says so, probe by probe.
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok    ") == 2


def test_a_manifest_edited_in_place_is_refused(probed_shelf, cli, tmp_path):
    from shelf.behaviour import check_behaviour

    target = tmp_path / "installed"
    _install(cli, probed_shelf, target)
    manifest = target / "mlm" / "cclm-manifest.json"
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"tolerance":0.0001', '"tolerance":1000'))
    with pytest.raises(IntegrityError, match="does not match the manifest mlm was installed from"):
        check_behaviour(target)


def test_plain_verify_stays_free_of_tensorflow(probed_shelf, cli, tmp_path):
    target = tmp_path / "installed"
    _install(cli, probed_shelf, target)
    code = (
        "import sys\nfrom shelf.cli import main\nrc = main(['verify', '--target', sys.argv[1]])\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False False")
