"""``serve``: a registry for a team, on loopback or a chosen address."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import click

from shelf.commands._common import settings


@click.command("serve")
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--git-port", type=int, default=9418, show_default=True, help="Port of git daemon (read-only).")
@click.option(
    "--http-port",
    "--lfs-port",
    "http_port",
    type=int,
    default=8080,
    show_default=True,
    help="Port of the HTTP server: git smart HTTP and the Git LFS API.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of tokens, one per line, that may publish (over HTTP, the token as the password). "
    "Without it the shelf is served read-only.",
)
@click.option(
    "--url-host",
    metavar="NAME",
    help="Host name clients use, written into the URLs and .lfsconfig (default: --host, or this "
    "machine's name when --host is 0.0.0.0).",
)
@click.option(
    "--s3-bucket",
    metavar="BUCKET",
    help="Keep the shelf's blobs in this S3 bucket (endpoint, keys and region from the standard AWS "
    "environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...); downloads are pre-signed bucket URLs.",
)
@click.option("--s3-prefix", metavar="P", default="", help="Key prefix inside --s3-bucket.")
@click.pass_context
def serve_cmd(ctx, path, host, git_port, http_port, url_host, token_file, s3_bucket, s3_prefix):
    """Serve one local shelf to a team: git:// and HTTP for git, a Git LFS server, and its web pages.

    Without PATH, serves the shelf named by --shelf (a local path), else the local shelf on disk; nothing
    beside it is served. Anyone who can reach the address can read (clone, install). Publishing goes to
    the http URL with a token from --token-file as the password (CCLM_SHELF_TOKEN, netrc or a git
    credential helper on the publisher's side). Prints one `<role>  <url>` line per URL. Stop with Ctrl-C.
    The HTTP root serves the shelf's web pages and its sparse index (as `cclm-shelf export --html`
    writes them; read-only, for `--shelf sparse+http://HOST:PORT/`), rewritten within seconds of a
    publish or a yank.
    """
    from shelf import serve
    from shelf.source import ShelfSource, ensure_embedded_shelf

    shelf_path = Path(path) if path else local_shelf(settings(ctx).shelf) or Path(ensure_embedded_shelf())
    source = ShelfSource(str(shelf_path.resolve()), cache_dir=settings(ctx).cache_dir)
    source.refresh()
    _check_is_shelf(source, shelf_path)
    _warn_if_readable_by_others(token_file)
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop the servers on `kill` as on Ctrl-C
        signal.signal(signum, _stop_on_signal)
    try:
        # start() stops what it started when interrupted; the with block stops both servers otherwise.
        pages = _pages_folder(source)
        static = {"/": pages}  # the shelf's web pages at the HTTP root
        s3 = s3_settings(s3_bucket, s3_prefix)
        with serve.start(
            shelf_path, host, git_port, http_port, url_host, token_file=token_file, static=static, s3=s3
        ) as servers:
            if serve.point_lfs_url(source, servers.lfs_url):
                click.echo(f"pointed {shelf_path}/.lfsconfig at {servers.lfs_url}", err=True)
            site = _live_site(source, shelf_path, pages, servers)
            _announce(shelf_path, servers)
            ticks = 0
            while all(p.poll() is None for p in servers.processes):
                time.sleep(0.5)
                ticks += 1
                if ticks % PAGE_CHECK_TICKS == 0:
                    _update_pages(site)
            click.echo("a server stopped; shutting down", err=True)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


PAGE_CHECK_TICKS = 4  # the pages follow a publish or a yank within about two seconds


def s3_settings(bucket: str | None, prefix: str) -> dict[str, str] | None:
    """The bucket settings for the LFS server, after checking that boto3 can reach the bucket."""
    from shelf.errors import ConfigError

    if not bucket:
        if prefix:
            raise ConfigError("--s3-prefix needs --s3-bucket", hint="name the bucket with --s3-bucket")
        return None
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise ConfigError("--s3-bucket needs boto3", hint="pip install 'cclm-shelf[serve]'") from None
    try:
        boto3.client("s3").head_bucket(Bucket=bucket)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise ConfigError(
            f"the S3 bucket {bucket!r} cannot be reached: {_s3_reason(e)}",
            hint="check AWS_ENDPOINT_URL, the keys and the region in the environment, and the bucket name",
        ) from None
    return {"bucket": bucket, "prefix": prefix.strip("/")}


def _s3_reason(error) -> str:
    """What a boto3 failure to reach a bucket means, in words (its class name when nothing better)."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS keys in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return "the endpoint did not answer"
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        words = {"404": "no such bucket", "NoSuchBucket": "no such bucket", "403": "access denied (the keys)"}
        return words.get(code, f"the server answered {code or type(error).__name__}")
    return type(error).__name__


def _pages_folder(source) -> Path:
    """Where the pages of a served shelf live: in the cache, beside its mirror (kept across restarts)."""
    from shelf.remote.mirror import mirror_path

    folder = source.cache_dir / "pages" / mirror_path(source.url, source.cache_dir).name.removesuffix(".git")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _live_site(source, shelf_path: Path, pages: Path, servers):
    from shelf.site.live import LiveSite

    site = LiveSite(source, shelf_path.resolve(), pages, servers.git_url, lfs_url=servers.lfs_url)
    _update_pages(site)
    return site


def _update_pages(site) -> None:
    """Rewrite the pages if the shelf moved; a failure is reported and the shelf stays served."""
    from shelf.errors import ShelfError, translated

    try:
        with translated():
            site.update()
    except ShelfError as e:
        site.skip_current()
        click.echo(f"warning: the web pages were not updated: {e}", err=True)


def _warn_if_readable_by_others(token_file: Path | None) -> None:
    """Tokens are passwords: say so when the file is open to the group or everyone."""
    with contextlib.suppress(OSError):  # a token file that cannot be read is refused by serve.start
        if token_file is None or not Path(token_file).stat().st_mode & 0o077:
            return
        click.echo(f"warning: other users can read {token_file}; chmod 600 {token_file}", err=True)


def _check_is_shelf(source, shelf_path: Path) -> None:
    """Refuse a git repository that is not a shelf: serving one would commit an .lfsconfig into it."""
    from registry_index.layout import INDEX_CONFIG_PATH
    from shelf.errors import ConfigError

    if not source.mirror.exists(source.head, INDEX_CONFIG_PATH):
        raise ConfigError(
            f"{shelf_path} is a git repository but not a shelf: it has no {INDEX_CONFIG_PATH}",
            hint="serve a shelf made with `cclm-shelf init PATH` (nothing was changed)",
        )


def local_shelf(url: str | None, command: str = "serve") -> Path | None:
    """The shelf named by ``url`` (--shelf), which must be on this machine for ``command``."""
    from shelf.errors import ConfigError
    from shelf.remote.transport import local_path
    from shelf.remote.url import is_local_url

    if url is None:
        return None
    if not is_local_url(url):
        raise ConfigError(
            f"{url} is not a shelf on this machine",
            hint=f"give its path on this machine: cclm-shelf {command} PATH",
        )
    return local_path(url)


def _announce(shelf_path: Path, servers) -> None:
    """The URLs on stdout, one `<role>  <url>` line each; how to use them on stderr."""
    writes = "publish to the http URL with a token" if servers.writable else "read-only (no --token-file)"
    click.echo(f"serving {shelf_path}: {writes}", err=True)
    for role, url in servers.roles():
        click.echo(f"{role}  {url}")
    click.echo(f"install:  cclm-shelf --shelf {servers.git_url} install NAME@VERSION", err=True)
    if servers.writable:
        click.echo(
            f"publish:  CCLM_SHELF_TOKEN=... cclm-shelf --shelf {servers.http_url} publish FOLDER", err=True
        )


def _stop_on_signal(_signum, _frame) -> None:
    # One request to stop is enough: a second signal must not interrupt the shutdown itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
