"""The model registry, in Postgres: every fitted cost model with its version, training metrics
and feature schema (`strategy_models`); at most one is promoted. `fillpath strategy train`
stores models, `promote` and `list` (and StrategyService's PromoteModel / ListModels) manage
them, and the strategy service loads the promoted one — again whenever the promoted version
changes (`Registry.promoted_version`, polled)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from fillpath.core.errors import AlreadyExists, NotFound
from fillpath.strategy.model import LearnedModel
from fillpath.strategy.service import Strategies

log = logging.getLogger("fillpath.strategy")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    version: str
    trained_at: datetime
    seed: int
    promoted: bool
    promoted_at: datetime | None
    metrics: dict[str, float]
    features: tuple[str, ...]
    profiles: tuple[str, ...]


_COLUMNS = "version, trained_at, seed, promoted, promoted_at, metrics, features, profiles"


def _info(row: tuple[Any, ...]) -> ModelInfo:
    version, trained_at, seed, promoted, promoted_at, metrics, features, profiles = row
    return ModelInfo(
        version=version, trained_at=trained_at, seed=seed, promoted=promoted,
        promoted_at=promoted_at, metrics=dict(metrics), features=tuple(features),
        profiles=tuple(profiles),
    )  # fmt: skip


class Registry:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def save(self, model: LearnedModel) -> ModelInfo:
        """Stores a model. Raises AlreadyExists for a version already stored."""
        with self._pool.connection() as conn:
            row = conn.execute(
                f"INSERT INTO strategy_models (version, trained_at, seed, features, profiles,"
                f" metrics, model) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (version) DO NOTHING RETURNING {_COLUMNS}",
                (
                    model.version, model.trained_at, model.seed, Jsonb(list(model.features)),
                    Jsonb(list(model.profiles)), Jsonb(model.metrics), model.to_bytes(),
                ),
            ).fetchone()  # fmt: skip
        if row is None:
            raise AlreadyExists("model", model.version, "a model of this version is stored")
        return _info(row)

    def list(self) -> list[ModelInfo]:
        """Every model, newest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM strategy_models ORDER BY trained_at DESC, version"
            ).fetchall()
        return [_info(r) for r in rows]

    def promote(self, version: str) -> ModelInfo:
        """Makes `version` the promoted model (and no other). Raises NotFound."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('strategy_models'))")
            exists = conn.execute(
                "SELECT 1 FROM strategy_models WHERE version = %s", (version,)
            ).fetchone()
            if exists is None:
                raise NotFound("model", version)
            conn.execute(
                "UPDATE strategy_models SET promoted = false, promoted_at = NULL"
                " WHERE promoted AND version <> %s",
                (version,),
            )
            row = conn.execute(
                f"UPDATE strategy_models SET promoted = true,"
                f" promoted_at = coalesce(promoted_at, now()) WHERE version = %s"
                f" RETURNING {_COLUMNS}",
                (version,),
            ).fetchone()
        assert row is not None
        return _info(row)

    def promoted_version(self) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT version FROM strategy_models WHERE promoted").fetchone()
        return None if row is None else str(row[0])

    def load(self, version: str) -> LearnedModel:
        """Raises NotFound, or ValueError when its feature schema is not this version's."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT model FROM strategy_models WHERE version = %s", (version,)
            ).fetchone()
        if row is None:
            raise NotFound("model", version)
        return LearnedModel.from_bytes(bytes(row[0]))


def refresh_model(strategies: Strategies, registry: Registry) -> None:
    """Has `strategies` rank with the promoted model, loading it if it is not the one in use
    (none promoted, or one that does not load: the rules alone)."""
    version = registry.promoted_version()
    current = strategies.model.version if strategies.model is not None else None
    if version == current:
        return
    if version is None:
        strategies.use_model(None)
        log.info("no cost model promoted: choosing by the rules alone")
        return
    try:
        strategies.use_model(registry.load(version))
    except (NotFound, ValueError) as err:
        log.warning("cost model %s not loaded (%s): choosing by the rules alone", version, err)
        strategies.use_model(None)
        return
    log.info("cost model %s loaded", version)
