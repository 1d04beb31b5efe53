"""A giftless storage backend for a served shelf's blobs in S3 (``cclm-shelf serve --s3-bucket``).

giftless's own ``AmazonS3Storage`` hands out pre-signed URLs: clients upload to and download from the bucket
directly, so the server never streams a download. This subclass adds what ``shelf.lfs_storage`` does for
local storage, that an upload counts only once its bytes hash to the object id it claims:

- an upload goes to ``<prefix>/<org>/<repo>/incoming/<oid>`` (pre-signed, with S3's own
  ``x-amz-checksum-sha256`` check where the store enforces it);
- the client's verify request hashes that object (streamed from the bucket) and, only when the sha256
  matches, copies it to ``<prefix>/<org>/<repo>/<oid>`` inside the bucket and deletes the upload; a
  mismatch deletes it and answers 422, so the object stays absent and the client uploads it again;
- downloads and "already there" answers read only the verified keys.

The bucket, the endpoint, the keys and the region come from the standard AWS environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``). Imported
only inside the giftless server process.
"""

from __future__ import annotations

import posixpath
from typing import Any

from giftless.storage.amazon_s3 import AmazonS3Storage

from registry_index.pointer import is_sha256_hex
from shelf.fsutil import copy_hashing

INCOMING = "incoming"


class VerifiedS3Storage(AmazonS3Storage):
    """S3 storage whose objects count only after their sha256 was checked (see the module doc)."""

    def get_upload_action(
        self, prefix: str, oid: str, size: int, expires_in: int, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return super().get_upload_action(_incoming(prefix), oid, size, expires_in, extra)

    def verify_object(self, prefix: str, oid: str, size: int) -> bool:
        """True when ``oid`` is stored with ``size``; an upload waiting in ``incoming/`` is checked now."""
        if not is_sha256_hex(oid):
            return False
        if super().verify_object(prefix, oid, size):
            return True
        if not super().verify_object(_incoming(prefix), oid, size):
            return False
        return self._promote(prefix, oid)

    def _promote(self, prefix: str, oid: str) -> bool:
        """Hash the uploaded object; move it to its verified key when it matches, delete it either way."""
        staged = self._get_blob_path(_incoming(prefix), oid)
        body = self.s3_client.get_object(Bucket=self.bucket_name, Key=staged)["Body"]
        matches = copy_hashing(body)[0] == oid
        if matches:
            source = {"Bucket": self.bucket_name, "Key": staged}
            final = self._get_blob_path(prefix, oid)
            self.s3_client.copy(source, self.bucket_name, final)  # inside the bucket; multipart when large
        self.s3_client.delete_object(Bucket=self.bucket_name, Key=staged)
        return matches


def _incoming(prefix: str) -> str:
    return posixpath.join(prefix, INCOMING)
