"""The layering of DESIGN.md, enforced on the source: a module imports only
from layers below it; the protocol package is the only one that touches
wsproto (or h11) and it imports no asyncio; flow.py imports no wsproto."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import websockets_lite

PACKAGE = Path(websockets_lite.__file__).parent

LAYERS = {
    "typing": 0, "close": 0, "http": 0, "options": 0, "version": 0, "speedups": 0,
    "exceptions": 1,
    "protocol": 2, "flow": 2,
    "connection": 3, "proxy": 3,
    "client": 4, "server": 4,
    "patterns": 5, "asgi": 5, "router": 5, "asgi_server": 5,
    "pubsub": 6, "uvicorn": 6,
    "metrics": 7, "chat": 8,
    "__main__": 9, "compat": 9, "testing": 9, "pytest_plugin": 10,
}


def modules() -> list[Path]:
    paths = PACKAGE.rglob("*.py")
    return sorted(p for p in paths if p.name != "__init__.py" or p.parent != PACKAGE)


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0]


def imports(path: Path) -> tuple[set[str], set[str]]:
    """Return (sibling layers imported, third-party top-level packages imported)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE).parent.parts
    local: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "websockets_lite":
                    local.add(alias.name.split(".")[1])
                else:
                    external.add(top)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                top = (node.module or "").split(".")[0]
                if top == "websockets_lite":
                    local.add((node.module or "").split(".")[1])
                else:
                    external.add(top)
            else:
                base = list(package[: len(package) - (node.level - 1)])
                target = [*base, *(node.module or "").split(".")] if node.module else base
                if target:
                    local.add(target[0])
                else:  # "from . import x"
                    local.update(alias.name for alias in node.names)
    return local, external


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_import_only_lower_layers(path):
    layer = layer_of(path)
    assert layer in LAYERS, f"{layer} is not in the layer map: add it to DESIGN order"
    local, _ = imports(path)
    for other in local - {layer}:
        assert LAYERS[other] < LAYERS[layer], f"{layer} must not import {other}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_protocol_touches_wsproto(path):
    _, external = imports(path)
    if layer_of(path) != "protocol":
        assert not external & {"wsproto", "h11"}


def test_protocol_and_what_it_imports_use_no_asyncio():
    seen: set[str] = set()
    todo = ["protocol"]
    while todo:
        layer = todo.pop()
        if layer in seen:
            continue
        seen.add(layer)
        if layer == "speedups":  # C: speedups.c includes Python.h and stdint only
            continue
        paths = [PACKAGE / f"{layer}.py"] if layer != "protocol" else [
            *(PACKAGE / "protocol").glob("*.py")
        ]
        for path in paths:
            local, external = imports(path)
            assert "asyncio" not in external, f"{path.name} imports asyncio"
            todo.extend(local)
    assert seen == {"protocol", "close", "exceptions", "http", "typing", "speedups"}


def test_flow_imports_no_wsproto():
    _, external = imports(PACKAGE / "flow.py")
    assert not external & {"wsproto", "h11", "asyncio"}


def test_public_names_are_exported():
    for name in websockets_lite.__all__:
        assert hasattr(websockets_lite, name), name
    assert (PACKAGE / "py.typed").exists()


def test_every_subpackage_is_packaged():
    # A wheel built with "packages = [websockets_lite]" silently left out
    # pubsub/ and protocol/: check the find rule against the tree.
    import tomllib

    from setuptools import find_namespace_packages

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_namespace_packages(str(PACKAGE.parent), include=include))
    tree = {
        ".".join(path.parent.relative_to(PACKAGE.parent).parts)
        for path in PACKAGE.rglob("__init__.py")
    }
    assert tree <= found
