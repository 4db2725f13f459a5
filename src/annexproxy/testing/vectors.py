"""Access to shared/spec/vectors: the golden tables and the generators that made them.

The generators (``tools/gen_*.py``) build repositories with real git-annex; tests import
them to rebuild fixtures rather than trust stored copies.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "spec" / "vectors"


def load_generator(name: str) -> ModuleType:
    """Import ``tools/NAME.py`` (with its ``common`` helpers importable).

    Raises:
        FileNotFoundError: the shared vectors are not beside this checkout.
    """
    tools = VECTORS / "tools"
    if not (tools / f"{name}.py").is_file():
        raise FileNotFoundError(f"no vector generator {name} in {tools}")
    sys.path.insert(0, str(tools))
    try:
        spec = importlib.util.spec_from_file_location(name, tools / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(tools))


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of a ``.tsv`` vector table (comment lines skipped)."""
    with (VECTORS / name).open(encoding="utf-8") as table:
        lines = (line for line in table if not line.startswith("#"))
        return list(csv.DictReader(lines, delimiter="\t"))
