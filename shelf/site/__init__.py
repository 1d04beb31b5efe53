"""A shelf's web pages: a front page, a page per component and a page per base (``export --html``)."""

from shelf.site.catalog import Catalog, read_catalog
from shelf.site.render import export_site, foreign_pages, render_site, site_pages, write_site

__all__ = [
    "Catalog",
    "export_site",
    "foreign_pages",
    "read_catalog",
    "render_site",
    "site_pages",
    "write_site",
]
