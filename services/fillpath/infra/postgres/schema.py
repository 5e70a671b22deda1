"""Versioned schema migrations.

Each component that owns tables (the event store, each domain's projections) keeps numbered SQL
files (``0001_name.sql``) in a ``migrations`` folder of its package. `migrate` applies the ones a
database has not seen, each in its own transaction, and records them in ``schema_migrations``;
an advisory lock keeps two processes from migrating at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import psycopg

_MIGRATION_LOCK = 0x46494C4C50415448  # "FILLPATH"


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """The migrations of one component: the SQL files in `package`'s ``migrations`` folder."""

    component: str
    package: str

    def scripts(self) -> list[tuple[int, str, str]]:
        folder = files(self.package) / "migrations"
        found = []
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                number = int(entry.name.split("_", 1)[0])
                found.append((number, entry.name, entry.read_text(encoding="utf-8")))
        return sorted(found)


EVENT_STORE_MIGRATIONS = MigrationSet("event_store", "fillpath.infra.postgres")


def migrate(conninfo: str, sets: Sequence[MigrationSet]) -> list[str]:
    """Applies every pending migration of `sets`, in order. Returns the names applied."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component text NOT NULL, version integer NOT NULL, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
            )
            for migration_set in sets:
                done = {
                    row[0]
                    for row in conn.execute(
                        "SELECT version FROM schema_migrations WHERE component = %s",
                        (migration_set.component,),
                    )
                }
                for number, name, sql in migration_set.scripts():
                    if number in done:
                        continue
                    with conn.transaction():
                        conn.execute(sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (component, version, name)"
                            " VALUES (%s, %s, %s)",
                            (migration_set.component, number, name),
                        )
                    applied.append(f"{migration_set.component}/{name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied
