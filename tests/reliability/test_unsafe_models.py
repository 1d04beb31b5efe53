"""Model files that would run code: installed as plain bytes, refused by the core's loader, no code runs.

A component's ``component.json`` is rewritten so that its model holds a ``Lambda`` layer whose function
creates a marker file, or names a custom object from a foreign module. The shelf installs the bytes (it
never executes anything); loading the installed folder with the core raises ``UnsafeModelError`` and the
marker never appears. A control shows the same config WOULD create the marker if loaded unsafely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shelf.api import Shelf
from tests.reliability.conftest import record
from tests.reliability.kit import REPO_ROOT, CraftedShelf

pytestmark = pytest.mark.network

_LAMBDA_MODEL = """
import json, keras
inputs = keras.Input((4,))
hook = keras.layers.Lambda(lambda x: (open(__import__("os").environ["MARKER"], "w").write("ran"), x)[1])
model = keras.Model(inputs, hook(inputs))
print(json.dumps(keras.saving.serialize_keras_object(model)))
"""


def _lambda_config(marker: Path) -> dict:
    """A serialised Keras model whose Lambda writes ``marker`` when the model is rebuilt (own process)."""
    done = subprocess.run(
        [sys.executable, "-c", _LAMBDA_MODEL],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "MARKER": str(marker)},
    )
    marker.unlink(missing_ok=True)  # building the model in that process ran the function once
    return json.loads(done.stdout.strip().splitlines()[-1])


def _custom_object_config() -> dict:
    """A serialised Keras model whose last layer names a custom object from a foreign module."""
    import keras

    inputs = keras.Input((4,))
    config = keras.saving.serialize_keras_object(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
    layer = config["config"]["layers"][-1]
    layer.update({"module": "evil_module", "registered_name": "evil>Backdoor"})
    return config


_LOAD = """
import sys
from cclm_core.component import load_component
from cclm_core.errors import UnsafeModelError
try:
    load_component(sys.argv[1])
except UnsafeModelError as e:
    print("REFUSED", e)
"""


def _loads_in_child(folder: Path, marker: Path) -> subprocess.CompletedProcess:
    """Load with the core in a child process that has the marker's path: if the code ran, it would show."""
    env = {**os.environ, "MARKER": str(marker), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _LOAD, str(folder)], capture_output=True, text=True, timeout=180, env=env
    )


def test_lambda_and_custom_objects_install_but_never_load(tmp_path_factory, tmp_path: Path) -> None:
    from tests.support.shelves import saved_stack

    folder = saved_stack(tmp_path_factory).chars
    original = json.loads((folder / "component.json").read_text())
    weights = (folder / "component.weights.h5").read_bytes()
    marker = tmp_path / "lambda-ran"
    variants = {
        "lambda": {**original, "model": _lambda_config(marker)},
        "custom": {**original, "model": _custom_object_config()},
    }
    shelf = CraftedShelf.create(tmp_path / "shelf.git")
    good = 0
    for name, config in variants.items():
        files = {
            "component/component.json": json.dumps(config).encode(),
            "component/component.weights.h5": weights,
        }
        shelf.publish(f"unsafe_{name}", "0.1.0", files)
        target = tmp_path / "target"
        Shelf(shelf.url, cache_dir=tmp_path / "cache").install(f"unsafe_{name}", target=target)
        done = _loads_in_child(target / f"unsafe_{name}" / "component", marker)
        assert "REFUSED" in done.stdout, done.stdout + done.stderr
        assert "Lambda" in done.stdout if name == "lambda" else "evil" in done.stdout
        assert not marker.exists(), "the Lambda's code ran"
        good += 1
    record(
        "hostile", "Keras config with Lambda / custom object", 2, good, "pytest tests/reliability -k unsafe"
    )


def test_control_the_lambda_config_does_run_code_when_loaded_unsafely(tmp_path: Path) -> None:
    """Without the core's checks and safe mode the crafted config runs its code: the test has teeth."""
    marker = tmp_path / "lambda-ran"
    config = _lambda_config(marker)
    code = (
        "import json, sys, keras\nkeras.config.enable_unsafe_deserialization()\n"
        "keras.saving.deserialize_keras_object(json.loads(sys.argv[1]), safe_mode=False)\n"
    )
    env = {**os.environ, "MARKER": str(marker)}
    subprocess.run([sys.executable, "-c", code, json.dumps(config)], check=True, timeout=120, env=env)
    assert marker.exists()
