-- An algorithm execution's events are a stream of the shared event log, `algo-<execution id>`.
-- This row is its summary, written in the same transaction as each append: what ListExecutions
-- pages through and what a restarted algo process reloads (every execution not yet ended).

CREATE TABLE algo_executions (
    execution_id text PRIMARY KEY,
    order_id     text        NOT NULL UNIQUE,
    algorithm    text        NOT NULL,
    profile      text        NOT NULL,
    state        text        NOT NULL,
    quantity     bigint      NOT NULL,
    scheduled    bigint      NOT NULL,
    executed     bigint      NOT NULL,
    start_time   timestamptz NOT NULL,
    end_time     timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX algo_executions_live ON algo_executions (state) WHERE state IN ('PENDING', 'RUNNING', 'PAUSED');
