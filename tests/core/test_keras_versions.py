"""Folders saved under one Keras 3 load under another, with the same outputs and the same fingerprints.

The second Keras (3.10.0) is installed by scripts/setup.sh at ``Path(sys.prefix) / "keras-3.10.0"`` and
run in a child process with that folder first on PYTHONPATH. Its absence is a failure, not a skip: the
promise this file checks would otherwise go unchecked in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cclm_core.component import load_component  # noqa: E402
from cclm_core.fingerprint import component_fingerprint, composed_fingerprint, embedder_fingerprint  # noqa: E402
from cclm_core.models import ComposedModel, Embedder  # noqa: E402
from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OTHER_KERAS = Path(sys.prefix) / "keras-3.10.0"
PROBE = ["cclm is neat", "a", "said the fox."]

# Run under the other Keras: load every folder in argv[1] and save it again under argv[2], then build,
# save and describe a fresh set under argv[3]; report versions, fingerprints and outputs as JSON.
_CHILD = """
import json, sys
from pathlib import Path
import keras, numpy as np
from cclm_core.component import load_component
from cclm_core.fingerprint import component_fingerprint, embedder_fingerprint
from cclm_core.models import ComposedModel, Embedder
from cclm_core.preprocessing import Preprocessor
from tests.core.test_keras_versions import build_and_save, outputs

given, resaved, fresh = (Path(p) for p in sys.argv[1:4])
prep = Preprocessor(load_from=given / "prep")
embedder = Embedder.load(given / "embedder")
components = [load_component(given / name) for name in ("mlm", "rec")]
composed = ComposedModel.load(given / "composed")
nested = Embedder.load(given / "nested")
report = {
    "keras": keras.__version__,
    "loaded": outputs(prep, embedder, components, composed, nested),
    "resaved": {
        "embedder": embedder_fingerprint(embedder.save(resaved / "embedder")),
        "mlm": component_fingerprint(components[0].save(resaved / "mlm")),
        "rec": component_fingerprint(components[1].save(resaved / "rec")),
        "nested": embedder_fingerprint(nested.save(resaved / "nested")),
    },
    "fresh": build_and_save(prep, fresh),
}
print("REPORT" + json.dumps(report))
"""


def build_and_save(prep, folder: Path) -> dict:
    """A frozen base, two components on it, their composition and an embedder nested on it, saved."""
    embedder = Embedder(prep.max_example_len, prep.n_chars, char_emb_size=8, n_filters=16, n_blocks=1)
    embedder.freeze()
    mlm = MaskedLanguagePretrainer(embedder, prep, output_dim=8, hidden_dim=16)
    rec = CharacterReconstructionPretrainer(embedder, prep, output_dim=8)
    composed = ComposedModel(embedder, [mlm, rec], prep)
    nested = Embedder(prep.max_example_len, prep.n_chars, model=composed)
    prep.save(folder / "prep")
    embedder.save(folder / "embedder")
    mlm.save(folder / "mlm")
    rec.save(folder / "rec")
    composed.save(folder / "composed")
    nested.save(folder / "nested")
    return outputs(prep, embedder, [mlm.component, rec.component], composed, nested)


def outputs(prep, embedder, components, composed, nested) -> dict:
    ids = prep.strings_to_array(PROBE)
    hidden = embedder.model(ids)
    return {
        "embedder": np.asarray(hidden).tolist(),
        "components": [np.asarray(c.model(hidden)).tolist() for c in components],
        "composed": np.asarray(composed.model(ids)).tolist(),
        "nested": np.asarray(nested.model(ids)).tolist(),
    }


def _fingerprints(folder: Path) -> dict:
    return {
        "embedder": embedder_fingerprint(folder / "embedder"),
        "mlm": component_fingerprint(folder / "mlm"),
        "rec": component_fingerprint(folder / "rec"),
        "nested": embedder_fingerprint(folder / "nested"),
    }


def _close(a: dict, b: dict) -> None:
    for key in ("embedder", "composed", "nested"):
        assert np.allclose(a[key], b[key], atol=1e-5), key
    for x, y in zip(a["components"], b["components"], strict=True):
        assert np.allclose(x, y, atol=1e-5)


def test_folders_move_between_keras_versions_with_the_same_fingerprints(prep, tmp_path):
    assert (OTHER_KERAS / "keras").is_dir(), (
        f"the second Keras is missing at {OTHER_KERAS}: run scripts/setup.sh "
        "(pip install --target <venv>/keras-3.10.0 --no-deps keras==3.10.0)"
    )
    ours = build_and_save(prep, tmp_path / "ours")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OTHER_KERAS), str(ROOT)])}
    args = [str(tmp_path / p) for p in ("ours", "resaved", "theirs")]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("REPORT")]
    assert done.returncode == 0 and line, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(line[-1][len("REPORT") :])
    assert report["keras"] == "3.10.0" and keras.__version__ != "3.10.0"

    # saved here, loaded there: same outputs, and saving again there keeps every fingerprint
    _close(report["loaded"], ours)
    assert report["resaved"] == _fingerprints(tmp_path / "ours")

    # saved there, loaded here: same outputs, same fingerprints after saving again here
    theirs = tmp_path / "theirs"
    embedder = Embedder.load(theirs / "embedder")
    components = [load_component(theirs / name) for name in ("mlm", "rec")]
    composed, nested = ComposedModel.load(theirs / "composed"), Embedder.load(theirs / "nested")
    from cclm_core.preprocessing import Preprocessor

    _close(
        outputs(Preprocessor(load_from=theirs / "prep"), embedder, components, composed, nested),
        report["fresh"],
    )
    again = tmp_path / "again"
    embedder.save(again / "embedder")
    components[0].save(again / "mlm")
    components[1].save(again / "rec")
    nested.save(again / "nested")
    assert _fingerprints(again) == _fingerprints(theirs)
    composed.save(again / "composed")
    assert composed_fingerprint(again / "composed") == composed_fingerprint(theirs / "composed")
    assert [c.base["embedder"] for c in components] == [embedder_fingerprint(theirs / "embedder")] * 2
