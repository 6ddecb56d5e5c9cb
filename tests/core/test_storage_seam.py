"""The storage seam: what differs between SQLite and PostgreSQL lives in server/db/dialect.py
alone, so a new storage backend is one module. Everything else asks it; a branch on the
database's name anywhere else fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
SEAM = ROOT / "server" / "db" / "dialect.py"
# Frozen history: a migration states the schema as it was written.
FROZEN = ROOT / "server" / "db" / "migrations" / "versions"
BRANCHES = re.compile(r"""\.dialect\.name|\bis_sqlite\b|from sqlalchemy\.dialects|"""
                      r"""["'](sqlite|postgresql)["']|\bsqlite3\b|with_variant|pg_advisory""")


def branches_outside_the_seam(root: Path) -> list[str]:
    found = []
    for package in ("server", "workers"):
        for path in sorted((root / package).rglob("*.py")):
            if path == SEAM or FROZEN in path.parents:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if BRANCHES.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_database_branch_outside_the_dialect_module() -> None:
    """No module of server/ or workers/ but server/db/dialect.py names a database."""
    assert branches_outside_the_seam(ROOT) == []


def test_the_seam_check_sees_a_branch(tmp_path: Path) -> None:
    """A module that picks the dialect's insert itself is reported."""
    (tmp_path / "server").mkdir()
    (tmp_path / "workers").mkdir()
    (tmp_path / "server" / "store.py").write_text(
        'ins = pg.insert(t) if conn.dialect.name == "postgresql" else lite.insert(t)\n')
    assert branches_outside_the_seam(tmp_path) == [
        ('server/store.py:1: ins = pg.insert(t) if conn.dialect.name == "postgresql" '
         'else lite.insert(t)')]
