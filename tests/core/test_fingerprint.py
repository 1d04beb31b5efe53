"""Fingerprints and describe(): stable across save/load and processes, sensitive to every weight, no TF."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cclm_core.errors import FormatError, IncompatibleComponentError, UnsupportedFormatError
from cclm_core.fingerprint import describe, embedder_fingerprint, vocab_fingerprint

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return result.stdout.strip()


def test_fingerprint_modules_do_not_import_tensorflow():
    out = _python(
        "import sys, cclm_core, cclm_core.fingerprint, cclm_core.compat, cclm_core.preprocessing;"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    assert out == "[]"


@pytest.fixture(scope="module")
def saved(trained, prep, tmp_path_factory):
    """Folders of every item type, saved from the trained walkthrough pieces."""
    from cclm_core.models import ComposedModel

    embedder, mlm, rec = trained
    root = tmp_path_factory.mktemp("saved")
    return {
        "embedder": embedder.save(root / "embedder"),
        "mlm": mlm.save(root / "mlm"),
        "rec": rec.save(root / "rec"),
        "prep": prep.save(root / "prep").parent,
        "composed": ComposedModel(embedder, [mlm.model, rec.model], prep).save(root / "composed"),
    }


def test_embedder_fingerprint_is_stable_across_save_load(saved, tmp_path):
    from cclm_core.models import Embedder

    first = embedder_fingerprint(saved["embedder"])
    assert first.startswith("sha256:") and len(first) == 7 + 64
    resaved = Embedder.load(saved["embedder"]).save(tmp_path / "again")
    assert embedder_fingerprint(resaved) == first
    assert embedder_fingerprint(saved["composed"] / "embedder") == first


def test_embedder_fingerprint_is_the_same_in_another_process(saved, tmp_path):
    source, target = str(saved["embedder"]), str(tmp_path / "p")
    code = (
        "from cclm_core.models import Embedder; from cclm_core.fingerprint import embedder_fingerprint;"
        f"print(embedder_fingerprint(Embedder.load({source!r}).save({target!r})))"
    )
    assert _python(code) == embedder_fingerprint(saved["embedder"])


def test_one_changed_weight_changes_the_fingerprint(saved, tmp_path):
    folder = Path(shutil.copytree(saved["embedder"], tmp_path / "changed"))
    before = embedder_fingerprint(folder)
    with h5py.File(folder / "embedder.weights.h5", "r+") as handle:
        names: list[str] = []
        handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        data = handle[names[-1]]
        values = np.array(data[()])
        values.flat[0] += 1e-3
        data[...] = values
    assert embedder_fingerprint(folder) != before


def test_hdf5_metadata_does_not_change_the_fingerprint(saved, tmp_path):
    folder = Path(shutil.copytree(saved["embedder"], tmp_path / "meta"))
    before = embedder_fingerprint(folder)
    with h5py.File(folder / "embedder.weights.h5", "r+") as handle:
        handle.attrs["written_on"] = "another machine"
    config = json.loads((folder / "embedder.json").read_text())
    config["meta"] = {"keras_version": "0.0.0"}
    (folder / "embedder.json").write_text(json.dumps(config, indent=4))
    assert embedder_fingerprint(folder) == before


def test_describe_every_item_type(saved):
    emb_fp = embedder_fingerprint(saved["embedder"])
    prep = describe(saved["prep"])
    assert prep["item_type"] == "preprocessor" and prep["base"] is None
    assert prep["provides"] == {
        "vocab": vocab_fingerprint(saved["prep"]),
        "n_chars": prep["provides"]["n_chars"],
        "max_input_length": 32,
    }
    emb = describe(saved["embedder"])
    assert emb["fingerprint"] == emb_fp
    assert emb["provides"] == {
        "embedder": emb_fp,
        "n_chars": prep["provides"]["n_chars"],
        "max_input_length": 32,
        "output_dim": 32,
    }
    mlm = describe(saved["mlm"])
    assert mlm["item_type"] == "component" and mlm["provides"] == {"output_dim": 24}
    assert mlm["base"] == {
        "embedder": emb_fp,
        "vocab": prep["fingerprint"],
        "max_input_length": 32,
        "n_chars": prep["provides"]["n_chars"],
    }
    composed = describe(saved["composed"])
    assert composed["item_type"] == "composed" and composed["provides"]["output_dim"] == 40
    assert composed["provides"]["embedder"] == emb_fp


def test_describe_bad_folders(saved, tmp_path):
    with pytest.raises(FormatError, match="holds no saved cclm item"):
        describe(tmp_path)
    folder = Path(shutil.copytree(saved["mlm"], tmp_path / "noweights"))
    (folder / "component.weights.h5").unlink()
    with pytest.raises(FormatError, match=r"component\.weights\.h5 is missing"):
        describe(folder)
    (folder / "component.weights.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(FormatError, match="not a readable weights file"):
        describe(folder)
    config = json.loads((folder / "component.json").read_text()) | {"format": 7}
    (folder / "component.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedFormatError, match="format 7"):
        describe(folder)


def test_check_compatible_explains_in_model_terms(saved, tmp_path):
    from cclm_core.compat import check_compatible

    check_compatible(saved["embedder"], [saved["mlm"], saved["rec"]], saved["prep"])
    other = describe(saved["embedder"])
    other["provides"] = other["provides"] | {"embedder": "sha256:" + "cd34" * 16}
    info = describe(saved["mlm"]) | {"name": "en_wiki_ner_1"}
    with pytest.raises(IncompatibleComponentError) as err:
        check_compatible(other, [info])
    emb = embedder_fingerprint(saved["embedder"])[7:19]
    assert (
        f"component en_wiki_ner_1 needs embedder sha256:{emb}… but the embedder is sha256:cd34cd34cd34…"
        in str(err.value)
    )
    small = Path(shutil.copytree(saved["prep"], tmp_path / "prep2"))
    config = json.loads((small / "cclm_config.json").read_text()) | {"max_example_len": 16}
    (small / "cclm_config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleComponentError, match="max_input_length 16 but the embedder expects 32"):
        check_compatible(saved["embedder"], [saved["mlm"]], small)


def test_weights_are_hashed_in_slices_with_the_same_result(saved, tmp_path, monkeypatch):
    """Big weights are read a slice at a time (flat memory); the slicing never shows in the fingerprint."""
    import cclm_core.fingerprint as fingerprint

    folder = Path(shutil.copytree(saved["embedder"], tmp_path / "sliced"))
    with h5py.File(folder / "embedder.weights.h5", "r+") as handle:
        handle["extra/big_endian"] = np.arange(1000, dtype=">f8").reshape(10, 100)
        handle["extra/scalar"] = np.float32(2.5)
    whole = embedder_fingerprint(folder)
    monkeypatch.setattr(fingerprint, "_SLICE_BYTES", 64)  # a few rows at a time
    assert embedder_fingerprint(folder) == whole
    monkeypatch.setattr(fingerprint, "_SLICE_BYTES", 1)  # one row at a time
    assert embedder_fingerprint(folder) == whole
