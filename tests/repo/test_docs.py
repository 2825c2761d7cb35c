"""The docs a newcomer starts from say what is in the tree, and cite nothing outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("schemas", "operators", "connectors", "flows")
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]


def tracked_files(*paths: str) -> list[str]:
    """Files of the repository under ``paths`` (git-tracked, so another change in progress in the working tree
    does not count; every file when this is not a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", *paths], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    if not out:
        out = [str(p.relative_to(REPO)) for d in paths for p in (REPO / d).rglob("*") if p.is_file()]
    return out


def tree_entries() -> set[str]:
    """Top-level modules (``pkg/x.py``) and subpackages (``pkg/sub/``) of the four packages."""
    out: set[str] = set()
    for f in tracked_files(*PACKAGES):
        parts = Path(f).parts
        if len(parts) == 2 and parts[1].endswith(".py"):
            out.add(f)
        elif len(parts) == 3 and parts[2] == "__init__.py":
            out.add(f"{parts[0]}/{parts[1]}/")
    return out


def map_entries() -> set[str]:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+/[a-z_0-9]*(?:\.py|/))` \|", section, flags=re.M))


def test_the_module_map_lists_exactly_the_modules_of_the_tree():
    tree, documented = tree_entries(), map_entries()
    assert len(tree) > 60  # the walk found the packages
    assert sorted(tree - documented) == [], (
        "modules missing from the module map in docs/architecture.md: add a row with what each holds"
    )
    assert sorted(documented - tree) == [], "the module map in docs/architecture.md lists modules that do not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_reference_to_documents_outside_the_repository(doc):
    """A reader of the repository cannot open the design notes or the issue tracker it was built from."""
    bad = [
        f"{doc.name}:{i}: {line.strip()}"
        for i, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"DESIGN §|DESIGN\.md|issue [0-9]|\.\./shared/", line)
    ]
    assert bad == []


@pytest.mark.parametrize("doc", ["docs/contributing.md", "docs/architecture.md"])
def test_every_path_the_newcomer_docs_name_exists(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    paths = {
        p
        for p in re.findall(r"`([A-Za-z_.][\w./-]*)`", text)
        if "/" in p and not p.startswith(("http", "/")) and re.search(r"(\.(py|md|toml|yml|yaml|sh|sql|json)|/)$", p)
    }
    assert len(paths) > 10, paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == [], f"{doc} names paths that do not exist"


def test_contributing_names_the_fast_test_command_and_it_exists():
    text = (REPO / "docs" / "contributing.md").read_text(encoding="utf-8")
    assert "make test-fast" in text and "make test" in text
    assert re.search(r"^test-fast:", (REPO / "Makefile").read_text(encoding="utf-8"), flags=re.M)
    for topic in ("## Add a strategy", "## Add a feature", "## Add a sink", "## Add a metric", "## Where tests go"):
        assert topic in text, topic
