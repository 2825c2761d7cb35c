"""The layer rule, checked on the source of every package (docs/architecture.md, "Layers and the import rule").

Dependencies point one way: ``schemas`` <- ``operators`` <- ``connectors`` <- ``flows``.

* ``schemas/`` imports nothing of the project outside ``schemas``;
* ``operators/`` imports ``schemas`` and ``operators`` only, and neither it nor ``schemas/`` imports a stream
  processor, a Kafka, database, cache or HTTP client, or the Prometheus client (``FORBIDDEN_IN_PURE``);
* ``connectors/`` may import ``operators`` (pure logic that an I/O adapter wraps) and ``schemas``, never ``flows``;
* ``flows/`` wires everything and may import any layer.

Every import statement counts: module level, inside a function (a lazy import is still a dependency), under
``if TYPE_CHECKING``, relative (``from ..x import y``, resolved against the module's package), and
``importlib.import_module("name")`` / ``__import__("name")`` with a literal name. The check reads the source (AST)
and imports nothing, so it also covers modules that are never imported by a test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("schemas", "operators", "connectors", "flows")

#: Third-party modules (top-level names) that neither ``operators/`` nor ``schemas/`` may import.
FORBIDDEN_IN_PURE = frozenset(
    {
        "bytewax",
        "faust",  # stream processors
        "confluent_kafka",
        "kafka",
        "aiokafka",  # Kafka clients
        "psycopg",
        "psycopg2",
        "psycopg_pool",
        "asyncpg",  # PostgreSQL / TimescaleDB
        "clickhouse_connect",
        "chdb",  # ClickHouse
        "redis",  # cache
        "httpx",
        "aiohttp",
        "requests",
        "urllib3",  # HTTP clients
        "fastapi",
        "starlette",
        "uvicorn",  # HTTP servers
        "prometheus_client",  # metrics
    }
)

#: Project packages each layer may import (itself included).
ALLOWED_PROJECT = {
    "schemas": {"schemas"},
    "operators": {"schemas", "operators"},
    "connectors": {"schemas", "operators", "connectors"},
    "flows": {"schemas", "operators", "connectors", "flows"},
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file at ``path`` (a module under ``root``)."""
    name = module_name(root, path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def violations(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every import under ``root/<package>/`` that breaks the layer rule, as ``path:line: reason`` lines."""
    out: list[str] = []
    for layer in packages:
        for path in sorted((root / layer).rglob("*.py")):
            for line, target in imported_modules(root, path):
                top = target.split(".")[0]
                where = f"{path.relative_to(root)}:{line}"
                if top in ALLOWED_PROJECT and top not in ALLOWED_PROJECT[layer]:
                    out.append(f"{where}: {layer}/ imports {target} (allowed: {sorted(ALLOWED_PROJECT[layer])})")
                elif layer in ("operators", "schemas") and top in FORBIDDEN_IN_PURE:
                    out.append(f"{where}: {layer}/ imports {target} (an I/O client: belongs in connectors/)")
    return out


def test_every_package_keeps_the_layer_rule():
    found = violations(REPO)
    assert found == [], "layer rule broken:\n" + "\n".join(found)


def test_the_check_reads_every_module_of_every_package():
    """The walk sees the modules and imports that exist (a wrong root or glob would let the rule test pass on
    nothing)."""
    for layer in PACKAGES:
        files = list((REPO / layer).rglob("*.py"))
        assert len(files) >= 5, layer
        assert sum(len(imported_modules(REPO, p)) for p in files) >= 20, layer
    assert "msgspec" in {t for _, t in imported_modules(REPO, REPO / "schemas" / "events" / "base.py")}
    assert "operators.account.stage" in {t for _, t in imported_modules(REPO, REPO / "flows" / "trading.py")}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    for layer in PACKAGES:
        (tmp_path / layer).mkdir(exist_ok=True)
    return tmp_path


@pytest.mark.parametrize("client", sorted(FORBIDDEN_IN_PURE))
@pytest.mark.parametrize("layer", ["operators", "schemas"])
def test_a_fixture_module_importing_an_io_client_fails_the_check(tmp_path, layer, client):
    root = _tree(
        tmp_path,
        {
            f"{layer}/__init__.py": "",
            f"{layer}/clean.py": "import math\n",
            f"{layer}/sub/__init__.py": "",
            f"{layer}/sub/bad.py": f"import {client}.x\n",
        },
    )
    assert violations(root) == [
        f"{layer}/sub/bad.py:1: {layer}/ imports {client}.x (an I/O client: belongs in connectors/)"
    ]


def test_every_form_of_import_is_seen(tmp_path):
    root = _tree(
        tmp_path,
        {
            "operators/__init__.py": "",
            "operators/pkg/__init__.py": "from ...connectors import kafka\n",  # relative, from a package's __init__
            "operators/pkg/mod.py": (
                "from __future__ import annotations\n"
                "import typing\n"
                "if typing.TYPE_CHECKING:\n"
                "    from flows.settings import Settings\n"  # line 4: type-checking only, still a dependency
                "def f():\n"
                "    from psycopg import sql\n"  # line 6: lazy
                "    return __import__('redis')\n"  # line 7: dynamic
                "from .. import schemas_like\n"  # line 8: operators.schemas_like: allowed
                "from . import sibling\n"  # line 9: operators.pkg.sibling: allowed
                "import importlib; importlib.import_module('httpx')\n"
            ),  # line 10
            "schemas/__init__.py": "",
            "schemas/x.py": "from operators.performance import sharpe\nfrom .time import NS_PER_S\n",
            "connectors/__init__.py": "",
            "connectors/y.py": "from operators.bars import BarBuilder\nfrom flows.cli import app\n",
            "flows/__init__.py": "",
            "flows/z.py": "import bytewax\nimport connectors.y\nimport operators\n",
        },
    )
    assert violations(root) == [
        "schemas/x.py:1: schemas/ imports operators.performance (allowed: ['schemas'])",
        "operators/pkg/__init__.py:1: operators/ imports connectors (allowed: ['operators', 'schemas'])",
        "operators/pkg/mod.py:4: operators/ imports flows.settings (allowed: ['operators', 'schemas'])",
        "operators/pkg/mod.py:6: operators/ imports psycopg (an I/O client: belongs in connectors/)",
        "operators/pkg/mod.py:7: operators/ imports redis (an I/O client: belongs in connectors/)",
        "operators/pkg/mod.py:10: operators/ imports httpx (an I/O client: belongs in connectors/)",
        "connectors/y.py:2: connectors/ imports flows.cli (allowed: ['connectors', 'operators', 'schemas'])",
    ]
