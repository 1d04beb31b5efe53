"""The LFS objects of a shelf served with ``--s3-bucket``, as ``fsck`` checks them in the bucket.

``cclm-shelf serve --s3-bucket B --s3-prefix P`` keeps a verified object at the key giftless gives it,
``P/<LFS_ORG>/<repo>/<oid>`` (``shelf.s3_storage``), where ``<repo>`` is what giftless routes on: the
shelf folder's name without its ``.git`` (``shelf.serve_front.giftless_repo``). A check asks the bucket
for each key's size (one HEAD request, no bytes); with ``rehash`` it also streams the object through
sha256, which reads every byte from the bucket. Endpoint, keys and region come from the standard AWS
environment, as for ``serve``. Needs boto3 (the ``serve`` extra); imported only by ``fsck --s3-bucket``.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from shelf.errors import TransportError
from shelf.fsutil import copy_hashing
from shelf.serve_front import LFS_ORG, giftless_repo

NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class BucketObjects:
    """Where a served shelf's objects are in S3, and their check: None when intact, else missing/damaged."""

    def __init__(self, repo: Path, bucket: str, prefix: str = "", *, rehash: bool = False) -> None:
        import boto3

        self.bucket = bucket
        routed = giftless_repo(repo.name).removesuffix(".git")  # <org>/<repo>.git/info/lfs: keys <org>/<repo>
        self.folder = posixpath.join(prefix.strip("/"), LFS_ORG, routed)
        self.hashes = rehash
        self.client: Any = boto3.client("s3")

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.folder}"

    def key(self, oid: str) -> str:
        return posixpath.join(self.folder, oid)

    def check(self, oid: str, size: int) -> str | None:
        import botocore.exceptions

        try:
            found = int(self.client.head_object(Bucket=self.bucket, Key=self.key(oid))["ContentLength"])
            if found != size:
                return "damaged"
            if self.hashes:
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(oid))["Body"]
                digest, found = copy_hashing(body)
                if digest != oid or found != size:
                    return "damaged"
        except botocore.exceptions.ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in NOT_FOUND:
                return "missing"
            raise TransportError(
                f"{self.where}: the bucket answered {code or 'an error'} for {oid}",
                hint="check the keys in the environment: they must be allowed to read the bucket",
            ) from None
        except botocore.exceptions.BotoCoreError as e:
            raise TransportError(
                f"{self.where}: {type(e).__name__} while reading {oid}", hint="run fsck again"
            ) from None
        return None
