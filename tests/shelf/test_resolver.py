"""Resolver tests driven by data: JSON index files plus JSON cases (requested -> resolved | conflict).

Each ``resolver_cases/index-*.json`` is written as a real on-disk sparse index and read through
``registry_index.index.LocalIndex``; fingerprints are written as labels (``E1``) and expanded to
``sha256:`` digests here, and ``{E1}`` in a conflict fact stands for the shortened digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_index.index import IndexEntry, LocalIndex, format_index_file, index_config
from registry_index.layout import INDEX_CONFIG_PATH, index_path
from shelf.errors import ResolutionError
from shelf.resolution.explain import short
from shelf.resolution.provider import CandidateIndex
from shelf.resolver import Edge, resolve

CASES_DIR = Path(__file__).parent / "resolver_cases"


def fingerprint(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def _entry(name: str, raw: dict[str, Any], bases: dict[str, Any]) -> IndexEntry:
    base = bases[raw["base"]] if raw.get("base") else None
    if base is not None:
        base = {**base, "embedder": fingerprint(base["embedder"]), "vocab": fingerprint(base["vocab"])}
    provides = {
        k: fingerprint(v) if k in ("embedder", "vocab") else v for k, v in raw.get("provides", {}).items()
    }
    data = {
        "name": name,
        "version": raw["version"],
        "manifest_digest": fingerprint(f"{name}@{raw['version']}"),
        "kind": raw.get("kind", "component"),
        "base": base,
        "provides": provides,
        "requires": raw.get("requires", []),
        "yanked": raw.get("yanked", False),
    }
    if "yank_reason" in raw:
        data["yank_reason"] = raw["yank_reason"]
    return IndexEntry.from_dict(data)


def write_index(spec: dict[str, Any], root: Path) -> LocalIndex:
    """Write ``spec`` as a sparse index under ``root`` and open it."""
    (root / INDEX_CONFIG_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / INDEX_CONFIG_PATH).write_bytes(index_config())
    for name, raws in spec["components"].items():
        path = root / index_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(format_index_file(_entry(name, raw, spec.get("bases", {})) for raw in raws))
    return LocalIndex(root)


def _load_cases() -> list[Any]:
    cases = []
    for path in sorted(CASES_DIR.glob("cases-*.json")):
        for case in json.loads(path.read_text()):
            cases.append(pytest.param(case, id=case["id"]))
    return cases


def _expand(fact: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: short(fingerprint(m.group(1))), fact)


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LocalIndex]:
    built = {}
    for path in sorted(CASES_DIR.glob("index-*.json")):
        built[path.name] = write_index(json.loads(path.read_text()), tmp_path_factory.mktemp(path.stem))
    return built


def test_there_are_enough_cases() -> None:
    assert len(_load_cases()) >= 25


@pytest.mark.parametrize("case", _load_cases())
def test_case(case: dict[str, Any], indexes: dict[str, LocalIndex]) -> None:
    run = lambda: resolve(  # noqa: E731
        case["requested"],
        indexes[case["index"]],
        locked=case.get("locked", {}),
        upgrade=case.get("upgrade", False),
        allow_prereleases=case.get("allow_prereleases", False),
    )
    if "resolved" in case:
        assert run().versions() == case["resolved"]
        return
    with pytest.raises(ResolutionError) as caught:
        run()
    text = str(caught.value)
    assert "resolvelib" not in text and "Traceback" not in text
    for fact in case["conflict"]:
        assert _expand(fact) in text, f"{fact!r} missing from:\n{text}"


# --- beyond the table: the result's shape, and reading only what is needed -----------------------------


@pytest.fixture
def stack(indexes: dict[str, LocalIndex]) -> LocalIndex:
    return indexes["index-stack.json"]


def test_components_sorted_and_base_agreed(stack: LocalIndex) -> None:
    result = resolve(["en_wiki_sent_1", "en_wiki_ner_1"], stack)
    assert list(result.components) == ["en_wiki_clm_1", "en_wiki_ner_1", "en_wiki_sent_1"]
    assert result.base is not None
    assert result.base.embedder == fingerprint("E2")
    assert result.base.max_input_length == 256


def test_graph_records_who_required_whom(stack: LocalIndex) -> None:
    result = resolve(["en_wiki_ner_1"], stack)
    assert Edge(None, "en_wiki_ner_1", "en_wiki_ner_1") in result.graph
    assert result.dependencies("en_wiki_ner_1") == (
        Edge("en_wiki_ner_1", "en_wiki_clm_1", "en_wiki_clm_1>=0.3"),
    )
    assert result.roots() == ("en_wiki_ner_1",)
    chains = result.why("en_wiki_clm_1")
    assert [[e.child for e in chain] for chain in chains] == [["en_wiki_ner_1", "en_wiki_clm_1"]]


def test_no_base_without_based_components(indexes: dict[str, LocalIndex]) -> None:
    assert resolve(["app"], indexes["index-diamond.json"]).base is None


def test_reads_only_the_index_files_it_needs(tmp_path: Path) -> None:
    spec = json.loads((CASES_DIR / "index-stack.json").read_text())
    source = write_index(spec, tmp_path)
    resolve(["en_wiki_ner_1"], source)
    assert source.files_read == 2  # ner and clm, once each, out of eight components


def test_requirement_objects_are_accepted(stack: LocalIndex) -> None:
    from registry_index.requirements import parse_requirement

    result = resolve([parse_requirement("en_wiki_clm_1<0.3")], stack)
    assert result.versions() == {"en_wiki_clm_1": "0.2.1"}


def test_base_conflict_hint_names_a_fix(stack: LocalIndex) -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve(["en_wiki_embedder@1.0.0", "en_wiki_sent_1>=0.2"], stack)
    assert caught.value.hint is not None
    assert "en_wiki_sent_1 0.1.1, 0.1.0" in caught.value.hint


def test_fingerprints_are_shortened_to_12_hex() -> None:
    digest = fingerprint("E1")
    assert short(digest) == digest[: len("sha256:") + 12] + "…"
    assert short("256") == "256"


# --- a property: the resolver finds a compatible set exactly when one exists -------------------------

NAMES = ("a_1", "b_1", "c_1", "d_1")
SPECS = ("", ">=1.1", "<1.2", "@1.0.0", ">=1.0,<1.2")


class MemorySource:
    """Entries held in memory, for generated indexes (the table above uses the on-disk reader)."""

    def __init__(self, entries: dict[str, list[IndexEntry]]) -> None:
        self._entries = entries

    def entries(self, name: str) -> list[IndexEntry]:
        return self._entries.get(name, [])

    def names(self) -> list[str]:
        return sorted(self._entries)


def _generated_entry(name: str, minor: int, embedder: str, requires: list[str]) -> IndexEntry:
    bases = {"B": {"embedder": embedder, "vocab": "V1", "max_input_length": 64, "n_chars": 10}}
    return _entry(name, {"version": f"1.{minor}.0", "base": "B", "requires": requires}, bases)


@st.composite
def generated_index(draw: st.DrawFn) -> dict[str, list[IndexEntry]]:
    index: dict[str, list[IndexEntry]] = {}
    for position, name in enumerate(NAMES):
        minors = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
        index[name] = []
        for minor in minors:
            later = NAMES[position + 1 :]
            deps = draw(st.lists(st.sampled_from(later), max_size=2, unique=True)) if later else []
            requires = [dep + draw(st.sampled_from(SPECS)) for dep in deps]
            index[name].append(_generated_entry(name, minor, draw(st.sampled_from(["E1", "E2"])), requires))
    return index


def _valid(choice: dict[str, IndexEntry], roots: list[str]) -> bool:
    from registry_index.requirements import parse_requirement

    def satisfied(text: str) -> bool:
        req = parse_requirement(text)
        return req.name in choice and req.matches(choice[req.name].semver)

    if not all(satisfied(r) for r in roots):
        return False
    if not all(satisfied(r) for entry in choice.values() for r in entry.requires):
        return False
    return len({entry.base.embedder for entry in choice.values()}) <= 1


def _some_solution_exists(index: dict[str, list[IndexEntry]], roots: list[str]) -> bool:
    import itertools

    options = [[None, *index[name]] for name in NAMES]
    for combo in itertools.product(*options):
        if _valid({e.name: e for e in combo if e is not None}, roots):
            return True
    return False


@settings(max_examples=60, deadline=None)
@given(index=generated_index(), roots=st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True))
def test_resolves_exactly_when_a_compatible_set_exists(
    index: dict[str, list[IndexEntry]], roots: list[str]
) -> None:
    try:
        result = resolve(roots, MemorySource(index))
    except ResolutionError:
        assert not _some_solution_exists(index, roots)
        return
    assert _valid(dict(result.components), roots)


def test_explainer_copes_with_one_sided_and_empty_causes(stack: LocalIndex) -> None:
    from resolvelib.structs import RequirementInformation

    from shelf.resolution import CandidateIndex, Explainer, Policy, ShelfProvider, ShelfReporter
    from shelf.resolution.models import BaseRequirement

    provider = ShelfProvider(CandidateIndex(stack), Policy({}), ["en_wiki_clm_1"])
    explainer = Explainer(provider, ShelfReporter())
    newest = provider.index.candidates("en_wiki_clm_1")[0]
    one_sided = [RequirementInformation(BaseRequirement("embedder", fingerprint("E2")), newest)]
    error = explainer.explain(one_sided)
    assert "every other choice was ruled out" in error.message
    assert short(fingerprint("E2")) in error.message
    assert explainer.explain([]).message == "no compatible set of components exists"


def test_why_lists_every_chain_through_a_diamond(indexes: dict[str, LocalIndex]) -> None:
    result = resolve(["app"], indexes["index-diamond.json"])
    chains = [[e.child for e in chain] for chain in result.why("shared")]
    assert chains == [["app", "left", "shared"], ["app", "right", "shared"]]
    assert {e.requirement for e in result.dependents("shared")} == {"shared>=1.2", "shared<1.5"}
    assert [e.child for e in result.dependencies("app")] == ["left", "right"]


class CountingSource(MemorySource):
    """Counts how often the whole index is listed (costly on a large shelf)."""

    listed = 0

    def names(self) -> list[str]:
        self.listed += 1
        return super().names()


def test_the_index_is_listed_only_to_explain_an_unknown_name() -> None:
    source = CountingSource({"a_1": [_generated_entry("a_1", 0, "E1", [])]})
    assert resolve(["a_1"], source).versions() == {"a_1": "1.0.0"} and source.listed == 0
    with pytest.raises(ResolutionError, match="did you mean 'a_1'"):
        resolve(["a_2"], source)
    assert source.listed == 1


def test_candidates_are_newest_first_by_semver_precedence(tmp_path: Path) -> None:
    newest_first = ["1.10.0", "1.2.0", "1.0.0+b.2", "1.0.0", "1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-beta.2",
                    "1.0.0-alpha.beta", "1.0.0-alpha.1", "1.0.0-alpha", "0.9.0"]  # fmt: skip
    index = write_index({"components": {"x": [{"version": v} for v in sorted(newest_first)]}}, tmp_path)
    assert [c.version_text for c in CandidateIndex(index).candidates("x")] == newest_first
    assert resolve(["x"], index).versions() == {"x": "1.10.0"}
    assert resolve(["x<1.0.0"], index, allow_prereleases=True).versions() == {"x": "1.0.0-rc.1"}


def test_preference_sees_causes_rewritten_in_place_after_a_backjump(stack: LocalIndex) -> None:
    from resolvelib.structs import RequirementInformation

    from registry_index.requirements import parse_requirement
    from shelf.resolution import CandidateIndex, Policy, ShelfProvider
    from shelf.resolution.models import ComponentRequirement

    def cause(name: str) -> RequirementInformation:
        return RequirementInformation(ComponentRequirement(parse_requirement(name), name), None)

    backtracks = [0]
    provider = ShelfProvider(CandidateIndex(stack), Policy({}), [], lambda: backtracks[0])
    causes = [cause("en_wiki_ner_1")]

    def named() -> bool:  # the third place of the preference: False when a cause of the last conflict
        return not provider.get_preference("en_wiki_ner_1", {}, {}, {}, causes)[2]

    assert named()
    backtracks[0] += 1  # a conflict: resolvelib then rewrites the same list
    causes[:] = [cause("en_wiki_pos_1")]
    assert not named()
