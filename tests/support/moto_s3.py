"""moto's S3 server on 127.0.0.1 for the tests of blobs on object storage, and the AWS environment for it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.git_servers import free_port, wait_for_port
from tests.support.processes import stop_process

FAKE_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """Start ``moto_server`` on a free loopback port; yields the environment boto3 (and serve) needs."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
        yield {**FAKE_KEYS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    finally:
        stop_process(process)
