"""`cclm-shelf serve --s3-bucket`: a served shelf's blobs in S3 (moto's S3 server on loopback, boto3),
uploads checked by sha256 before they count, downloads pre-signed straight from the bucket."""

# ruff: noqa: F811 - the shared fixtures are imported by name for pytest

from __future__ import annotations

import signal

import boto3
import pytest
import requests

from tests.e2e.test_serve import TOKEN, eventually, serve_command, token_file
from tests.shelf.conftest import BASE, cli, saved_models, shelf_path  # noqa: F401 - shared fixtures
from tests.support.git_servers import free_port
from tests.support.moto_s3 import moto_s3

pytestmark = pytest.mark.network
BUCKET, PREFIX = "team-blobs", "shelves"


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 server with an empty bucket; the AWS environment points at it for this test."""
    with moto_s3() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def bucket_keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture
def served(s3, shelf_path, tmp_path):
    """``serve --s3-bucket`` of an empty shelf with a token; yields (root URL, shelf folder, process)."""
    git_port, http_port = free_port(), free_port()
    (tmp_path / "tmp").mkdir()
    extra = ["--token-file", str(token_file(tmp_path, TOKEN)), "--s3-bucket", BUCKET, "--s3-prefix", PREFIX]
    process = serve_command(shelf_path, git_port, http_port, *extra, tmp=tmp_path / "tmp")
    try:
        lines = [process.stdout.readline().rstrip("\n") for _ in range(4)]
        assert lines[2].startswith("lfs  "), (lines, process.stderr.read() if process.poll() else "")
        yield f"http://127.0.0.1:{http_port}", shelf_path, git_port
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "Traceback" not in err, err


def test_blobs_go_to_the_bucket_and_installs_verify(cli, served, s3, saved_models, tmp_path, monkeypatch):
    root, shelf, git_port = served
    http_url = f"{root}/{shelf.name}"
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    published = cli("--shelf", http_url, "publish", saved_models / BASE, "--name", BASE, "--version", "0.1.0")
    assert published.code == 0, published.err
    keys = bucket_keys(s3)
    assert keys and all(k.startswith(f"{PREFIX}/cclm/") for k in keys)
    assert not any("/incoming/" in k for k in keys)  # every upload was verified and moved into place
    assert not any(p.is_file() for p in (shelf / "lfs" / "objects").rglob("*"))

    monkeypatch.delenv("CCLM_SHELF_TOKEN")
    assert eventually(lambda: requests.get(f"{root}/index/names.txt", timeout=10).text == f"{BASE}\n")
    for name, url in (("git", f"git://127.0.0.1:{git_port}/{shelf.name}"), ("sparse", f"sparse+{root}/")):
        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / f"fresh-{name}"))
        installed = cli("--shelf", url, "install", f"{BASE}@0.1.0", "--target", tmp_path / name)
        assert installed.code == 0, installed.err
        assert cli("verify", "--target", tmp_path / name).code == 0

    # Bytes changed in the bucket (same size) are refused by a fresh install; nothing is installed.
    body = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=bytes([body[0] ^ 0xFF]) + body[1:])
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-again"))
    refused = cli(
        "--shelf",
        f"git://127.0.0.1:{git_port}/{shelf.name}",
        "install",
        f"{BASE}@0.1.0",
        "--target",
        tmp_path / "bad",
    )
    assert refused.code != 0 and "sha256" in refused.err
    assert not (tmp_path / "bad" / BASE).exists()


def test_fsck_checks_the_objects_in_the_bucket_and_rehashes_only_when_asked(
    cli, served, s3, saved_models, monkeypatch
):
    root, shelf, _git_port = served
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    args = ("--shelf", f"{root}/{shelf.name}", "publish", saved_models / BASE, "--name", BASE)
    published = cli(*args, "--version", "0.1.0")
    assert published.code == 0, published.err
    keys = bucket_keys(s3)
    sizes = {key: s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] for key in keys}
    fsck = ("fsck", shelf, "--s3-bucket", BUCKET, "--s3-prefix", PREFIX, "--json")

    clean = cli(*fsck)
    assert clean.code == 0, clean.out
    data = clean.json()
    assert [key.rsplit("/", 1)[0] for key in keys] == [f"{PREFIX}/cclm/{shelf.name.removesuffix('.git')}"] * 3
    assert data["objects_in"] == f"s3://{BUCKET}/{keys[0].rsplit('/', 1)[0]}"
    assert (data["objects"], data["problems"], data["rehashed"], data["bytes_verified"]) == (3, [], False, 0)
    hashed = cli(*fsck, "--rehash")
    assert hashed.code == 0 and hashed.json()["bytes_verified"] == sum(sizes.values()), hashed.err

    gone, flipped, cut = keys
    s3.delete_object(Bucket=BUCKET, Key=gone)
    body = s3.get_object(Bucket=BUCKET, Key=flipped)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=flipped, Body=bytes([body[0] ^ 0xFF]) + body[1:])  # same size
    body = s3.get_object(Bucket=BUCKET, Key=cut)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=cut, Body=body[:-1])
    oid = {key: key.rsplit("/", 1)[1] for key in keys}
    by_size = cli(*fsck)
    assert by_size.code == 1
    assert {(p["oid"], p["state"]) for p in by_size.json()["problems"]} == {
        (oid[gone], "missing"),
        (oid[cut], "damaged"),
    }
    by_hash = cli(*fsck[:-1], "--rehash")
    assert by_hash.code == 1 and f"damaged  {BASE} 0.1.0" in by_hash.out
    assert f"{oid[flipped]}" in by_hash.out and f"missing  {BASE} 0.1.0" in by_hash.out
    assert "first delete the damaged objects" in by_hash.out
    assert bucket_keys(s3) == sorted([flipped, cut])  # fsck changed nothing in the bucket

    refused = cli("fsck", shelf, "--rehash")
    assert refused.code == 2 and "--rehash is for --s3-bucket" in refused.err
    absent = cli("fsck", shelf, "--s3-bucket", "absent-bucket")
    assert absent.code == 2 and "bucket 'absent-bucket' cannot be reached: no such bucket" in absent.err


def test_an_upload_whose_bytes_do_not_match_never_counts(served, s3, tmp_path, monkeypatch):
    import hashlib

    from shelf.remote.lfs_protocol import LfsObject
    from shelf.remote.transport import transport_for

    root, shelf, _git_port = served
    claimed = b"the bytes the publisher meant"
    oid = hashlib.sha256(claimed).hexdigest()
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    client = transport_for(f"{root}/{shelf.name}")
    answer = client.batch("upload", [LfsObject(oid, len(claimed))])[0]
    upload, verify = answer.actions["upload"], answer.actions["verify"]
    forged = b"other bytes of the same size!"[: len(claimed)].ljust(len(claimed), b"!")
    requests.put(upload.href, data=forged, headers=dict(upload.header), timeout=10)
    headers = {"Content-Type": "application/vnd.git-lfs+json", **verify.header}
    checked = requests.post(verify.href, json={"oid": oid, "size": len(claimed)}, headers=headers, timeout=10)
    assert checked.status_code == 422
    assert not any(k.endswith("/" + oid) for k in bucket_keys(s3))  # neither kept nor left in incoming/
    again = client.batch("upload", [LfsObject(oid, len(claimed))])[0]
    assert "upload" in again.actions  # the server still asks for the object


def test_a_bucket_that_cannot_be_reached_says_why_in_words(s3, shelf_path, monkeypatch, tmp_path):
    """No such bucket, no keys, no answer: one line each, never boto3's class name alone."""
    from tests.support.shelves import cli as cli_process

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws to fall back on
    cases = [
        ("absent-bucket", {}, "no such bucket"),
        (
            BUCKET,
            {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
            "no AWS keys in the environment",
        ),
        (BUCKET, {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}, "the endpoint did not answer"),
    ]
    for bucket, env, words in cases:
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.delenv(name) if value is None else m.setenv(name, value)
            ports = ["--git-port", str(free_port()), "--http-port", str(free_port())]
            done = cli_process("serve", str(shelf_path), *ports, "--s3-bucket", bucket)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.splitlines()[0].startswith(
            f"error: the S3 bucket {bucket!r} cannot be reached: {words}"
        )
