-- The model registry: every fitted cost model with its version, training metrics and feature
-- schema; at most one is promoted, and the strategy service ranks with that one.
CREATE TABLE strategy_models (
    version     text PRIMARY KEY,
    trained_at  timestamptz NOT NULL,
    seed        bigint NOT NULL,
    features    jsonb NOT NULL,
    profiles    jsonb NOT NULL,
    metrics     jsonb NOT NULL,
    model       bytea NOT NULL,
    promoted    boolean NOT NULL DEFAULT false,
    promoted_at timestamptz
);

CREATE UNIQUE INDEX strategy_models_one_promoted ON strategy_models (promoted) WHERE promoted;
