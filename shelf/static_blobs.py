"""Blobs of a static shelf: ``<base>/blobs/sha256/<aa>/<oid>`` by plain GETs, verified as they stream.

``StaticBlobs`` is the LFS client with the batch request answered locally: each object's download action
is its URL under the export, so downloads keep everything the client does (parallel streaming into the
store, hashing while they stream, resume with ``Range``, retries). A static shelf takes no uploads.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry_index.layout import blob_path
from shelf.errors import ConfigError
from shelf.lfs import Action, LfsClient, LfsObject, ObjectAction


class StaticBlobs(LfsClient):
    """Downloads from the export at ``endpoint`` (its base URL), where ``layout.blob_path`` puts blobs."""

    def batch(self, operation: str, objects: Sequence[LfsObject]) -> list[ObjectAction]:
        if operation != "download":
            raise ConfigError(
                f"{self.endpoint} holds a static shelf's blobs, which are read-only",
                hint="publish to the git shelf it was exported from",
            )
        return [ObjectAction(o, {"download": Action(f"{self.endpoint}/{blob_path(o.oid)}")}) for o in objects]
