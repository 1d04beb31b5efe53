"""Writing a shelf's web pages: plain HTML and one stylesheet from the Jinja2 templates beside this module.

Layout under the destination::

    index.html                  every component: latest version, kind, summary, base
    components/<name>.html      its versions (yanked ones with the reason), files and sizes, requires,
                                base fingerprints, signer, and the install command to copy
    bases/<embedder hex>.html   a base and every component trained on it
    style.css

Same shelf, same bytes: nothing on the pages depends on the time or on this machine, and files whose bytes
did not change are not rewritten, so a sync moves only what changed. Only these files are written; nothing
else in the destination is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shelf.errors import ConfigError
from shelf.fsutil import atomic_write
from shelf.site.catalog import Catalog, base_key

STYLESHEET = "style.css"


def render_site(catalog: Catalog, shelf_url: str | None = None) -> dict[str, bytes]:
    """Every page of the site, by its path relative to the site's root."""
    env = _environment()
    names = {c.name for c in catalog.components}
    common = {"shelf_url": shelf_url, "base_key": base_key, "size": human_size, "on_shelf": names}
    pages = {
        "index.html": env.get_template("index.html").render(catalog=catalog, root="", **common),
        STYLESHEET: env.get_template(STYLESHEET).render(),
    }
    component_page = env.get_template("component.html")
    for component in catalog.components:
        pages[f"components/{component.name}.html"] = component_page.render(
            component=component, root="../", install=install_command, required=required_name, **common
        )
    base_page = env.get_template("base.html")
    for row in catalog.bases:
        pages[f"bases/{row.key}.html"] = base_page.render(row=row, root="../", **common)
    return {path: text.encode("utf-8") for path, text in pages.items()}


def install_command(name: str, version: str, shelf_url: str | None) -> str:
    shelf = f"--shelf {shelf_url} " if shelf_url else ""
    return f"cclm-shelf {shelf}install {name}@v{version}"


def required_name(requirement: str) -> str:
    """The component a requirement names (its page is linked when the shelf has it)."""
    from registry_index.requirements import parse_requirement

    return parse_requirement(requirement).name


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def write_site(pages: Mapping[str, bytes], dest: Path) -> list[str]:
    """Write ``pages`` under ``dest``, each through a temporary file; returns the paths that changed."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"cannot export to {dest}: it is a file", hint="give a folder (new or existing)")
    changed = []
    for rel, data in sorted(pages.items()):
        target = dest / rel
        try:
            if target.is_file() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        except OSError as e:
            raise ConfigError(
                f"cannot write {target}: {e.strerror}", hint="export to a folder you can write to"
            ) from e
        changed.append(rel)
    return changed


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("shelf.site", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def export_site(source, dest: Path, shelf_url: str | None = None) -> list[str]:
    """Write the pages of a ``ShelfSource`` under ``dest``; returns the paths that changed.

    ``shelf_url`` is the address people install from, shown in the install commands; it is stripped of
    credentials. Without it the commands name no shelf.
    """
    return write_site(site_pages(source, shelf_url), dest)


def site_pages(source, shelf_url: str | None = None) -> dict[str, bytes]:
    """The pages of a ``ShelfSource`` by relative path, rendered, not yet written (see ``export_site``)."""
    from shelf.lockfile import public_source
    from shelf.site.catalog import read_catalog

    public = public_source(shelf_url) if shelf_url else None
    return render_site(read_catalog(source), public)


def foreign_pages(pages: Mapping[str, bytes], dest: Path) -> list[str]:
    """The paths among ``pages`` where ``dest`` already holds a file cclm-shelf did not write (every page and
    the stylesheet it writes names cclm-shelf); writing there would replace a file of the user's."""
    found = []
    for rel in sorted(pages):
        try:
            if b"cclm-shelf" not in (Path(dest) / rel).read_bytes():
                found.append(rel)
        except OSError:
            continue  # not there (or unreadable): write_site says what is wrong when it gets there
    return found
