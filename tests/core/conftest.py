"""Small corpora and tiny trained pieces shared by the core tests (built once per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXTS = [
    f"{word} number {i} is {adjective}, said the {animal}."
    for i, (word, adjective, animal) in enumerate(
        [
            ("cclm", "neat", "fox"),
            ("shelf", "tidy", "dog"),
            ("model", "small", "cat"),
            ("token", "short", "owl"),
            ("résumé", "naïve", "emu"),
            ("kernel", "fast", "yak"),
        ]
        * 6
    )
]
MAX_LEN = 32


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(TEXTS)


@pytest.fixture(scope="module")
def prep():
    from cclm_core.preprocessing import Preprocessor

    return Preprocessor(max_example_len=MAX_LEN).fit(TEXTS)


@pytest.fixture(scope="module")
def trained(prep):
    """One base, two components: the MLM pretrainer trains the embedder with its component, then the
    embedder is frozen and the reconstruction pretrainer trains its component on it (1 epoch each)."""
    from cclm_core.models import Embedder
    from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer

    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=32)
    mlm = MaskedLanguagePretrainer(embedder=embedder, output_dim=24, hidden_dim=32)
    mlm.fit(TEXTS, epochs=1, batch_size=8)
    embedder.freeze()
    rec = CharacterReconstructionPretrainer(embedder=embedder, preprocessor=prep, output_dim=16)
    rec.fit(TEXTS, epochs=1, batch_size=8)
    return embedder, mlm, rec


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keras' TF backend warns on every numpy conversion under numpy 2; keep core test output readable."""
    here = Path(__file__).parent
    if not items or not items[0].config.pluginmanager.has_plugin("warnings"):
        return
    quiet = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(quiet)
