"""Sphinx configuration: the docs are built with warnings as errors (-W)."""

from __future__ import annotations

import websockets_lite

project = "websockets_lite"
author = "websockets_lite developers"
release = version = websockets_lite.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_type_aliases = {
    "Data": "websockets_lite.Data",
    "DataLike": "websockets_lite.DataLike",
    "Fragments": "websockets_lite.Fragments",
    "HeadersLike": "websockets_lite.http.HeadersLike",
}
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
html_theme = "furo"
html_title = "websockets_lite"
exclude_patterns = ["_build"]
