"""Behaviour checks: rebuild installed models and compare their probe outputs with what the publisher saw.

A manifest may carry ``probes`` (recorded at ``publish --probes``, see ``cclm_core.probes``). The check
rebuilds each installed item that has probes, under the TensorFlow and Keras installed here, runs the same
probe set, and compares within the manifest's tolerance. It reads the manifest installed beside the files,
after checking it against the digest the install record holds, so a manifest edited in place is refused.
This is the one place of the package manager that runs models: ``cclm-shelf verify`` without
``--behaviour`` stays free of TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shelf import constants
from shelf.errors import IntegrityError, NotFoundError
from shelf.install import InstallTarget


@dataclass(frozen=True)
class ProbeResult:
    """One item of one installed component, compared with its recorded probes."""

    name: str
    version: str
    item: str
    probe: int  # the probe that deviates most
    deviation: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.deviation <= self.tolerance

    def line(self) -> str:
        from cclm_core.probes import PROBE_STRINGS

        text = PROBE_STRINGS[self.probe] if self.probe < len(PROBE_STRINGS) else "?"
        verdict = "ok" if self.ok else "DRIFT"
        return (
            f"{verdict:<5} {self.name} {self.version} {self.item}: largest deviation {self.deviation:.3g} "
            f"on probe {self.probe} ({text[:24]!r}), tolerance {self.tolerance:g}"
        )


@dataclass
class BehaviourReport:
    results: list[ProbeResult] = field(default_factory=list)
    without_probes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[ProbeResult]:
        return [r for r in self.results if not r.ok]


def check_behaviour(target: Path, names: Sequence[str] | None = None) -> BehaviourReport:
    """Rebuild every installed component (or ``names``) that records probes and compare its outputs."""
    install_target = InstallTarget(target)
    record = install_target.read_record()["components"]
    unknown = [n for n in names or () if n not in record]
    if unknown:
        raise NotFoundError(f"not installed in {target}: {', '.join(unknown)}", hint="cclm-shelf list")
    report = BehaviourReport()
    for name in sorted(names or record):
        entry = record[name]
        folder = install_target.component_dir(name)
        probes = _installed_probes(folder, entry, name)
        if probes is None:
            report.without_probes.append(f"{name} {entry.get('version', '?')}")
            continue
        report.results += _compare_component(name, entry.get("version", "?"), folder, probes)
    return report


def _installed_probes(folder: Path, entry: dict, name: str) -> dict | None:
    path = folder / constants.MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if "sha256:" + hashlib.sha256(data).hexdigest() != entry.get("manifest_digest"):
        raise IntegrityError(
            f"{path} does not match the manifest {name} was installed from",
            hint=f"reinstall it: cclm-shelf install {name}@{entry.get('version', '?')}",
        )
    return json.loads(data).get("probes")


def _compare_component(name: str, version: str, folder: Path, probes: dict) -> list[ProbeResult]:
    from cclm_core.probes import compare, record_items

    items = {kind: folder / kind for kind in ("embedder", "component") if (folder / kind).is_dir()}
    actual = record_items(items)
    tolerance = float(probes["tolerance"])
    results = []
    for kind, recorded in sorted(probes["outputs"].items()):
        if kind not in actual:
            results.append(ProbeResult(name, version, kind, 0, float("inf"), tolerance))
            continue
        probe, deviation = compare(recorded, actual[kind])
        results.append(ProbeResult(name, version, kind, probe, deviation, tolerance))
    return results
