from shelf.resolution.explain import Explainer, short
from shelf.resolution.models import BaseCandidate, BaseRequirement, ComponentCandidate, ComponentRequirement
from shelf.resolution.provider import CandidateIndex, EntrySource, Policy, ShelfProvider
from shelf.resolution.reporter import ShelfReporter

__all__ = [
    "BaseCandidate",
    "BaseRequirement",
    "CandidateIndex",
    "ComponentCandidate",
    "ComponentRequirement",
    "EntrySource",
    "Explainer",
    "Policy",
    "ShelfProvider",
    "ShelfReporter",
    "short",
]
