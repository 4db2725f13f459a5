"""The architecture as a test: pure-core modules must not do I/O (STYLE.md, layering rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import annexproxy

PACKAGE = Path(annexproxy.__file__).parent

PURE = (
    "errors.py",
    "keys.py",
    "uuids.py",
    "p2p",
    "p2phttp",
    "branch/logs",
    "preferred",
    "space",
    "sim",
    "branch/paths.py",
    "branch/packfile.py",
    "branch/commitobjects.py",
    "special/backend.py",
    "special/chunking.py",
    "special/external_protocol.py",
    "special/remote.py",
)
FORBIDDEN = {
    "asyncio",
    "socket",
    "subprocess",
    "aiohttp",
    "boto3",
    "botocore",
    "aiobotocore",
    "time",
    "random",
    "os",
    "shutil",
    "fcntl",
    "pygit2",
    "threading",
    "select",
    "selectors",
    "signal",
}
# Layers may only import downwards.
LAYER_OF = {
    "storage": 2,
    "special": 2,
    "transports": 2,
    "branch": 2,
    "cluster": 3,
    "server": 3,
    "cli": 4,
    "testing": 5,
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _is_pure(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return any(rel == p or rel.startswith(p + "/") for p in PURE)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "annexproxy" or len(parts) < 2:
        return 0
    if module.startswith(("annexproxy.branch.logs", "annexproxy.branch.paths")):
        return 1
    return LAYER_OF.get(parts[1], 1)


def test_pure_core_does_no_io() -> None:
    offenders = []
    for path in filter(_is_pure, _modules()):
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_layers_import_downwards_only() -> None:
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        own = _layer("annexproxy." + rel)
        for name in _imports(path):
            if name.startswith("annexproxy.testing"):
                continue
            if _layer(name) > own:
                offenders.append(f"{rel} (layer {own}) imports {name} (layer {_layer(name)})")
    assert offenders == []


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []
