"""Importing registry_index stays cheap: no TensorFlow, and no heavy libraries until first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_does_not_load_tensorflow_or_network_libraries():
    modules = imported_after("import registry_index")
    assert "registry_index.index" in modules
    assert not {"tensorflow", "keras", "requests", "jsonschema"} & modules


def test_validation_loads_jsonschema_but_still_no_tensorflow():
    modules = imported_after("from registry_index import validate_manifest\nvalidate_manifest({})")
    assert "jsonschema" in modules
    assert "tensorflow" not in modules and "keras" not in modules
