-- The execution monitor's tables.
--
-- monitor_journal: every execution fact the monitor applied, in the order it applied them, with
-- the market as it stood then (the mark). The live executions are a fold of it, so
-- `monitor_execution` can always be rebuilt from it (and is, by `fillpath monitor rebuild`).
-- A fact delivered twice finds its event id here and is skipped.
CREATE TABLE monitor_journal (
    seq         bigint      PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    event_type  text        NOT NULL,
    envelope    bytea       NOT NULL,
    mark        jsonb       NOT NULL
);

-- The live executions: one row per parent order, as the journal up to `seq` left it.
CREATE TABLE monitor_execution (
    order_id    text        PRIMARY KEY,
    account     text        NOT NULL,
    symbol      text        NOT NULL,
    active      boolean     NOT NULL,
    seq         bigint      NOT NULL,
    document    jsonb       NOT NULL
);

-- Alerts are facts of their own (raised once, then acknowledged): a rebuild keeps them.
CREATE TABLE monitor_alert (
    alert_id    text        PRIMARY KEY,
    raised_at   timestamptz NOT NULL,
    acknowledged boolean    NOT NULL DEFAULT false,
    document    jsonb       NOT NULL
);
CREATE INDEX monitor_alert_raised ON monitor_alert (raised_at, alert_id);

-- The market tape the monitor saw (trades and consolidated quotes), for TCA and reports.
-- kind: 1 trade (price, quantity), 2 quote (bid in price, ask in ask_nanos).
CREATE TABLE monitor_tape (
    symbol      text        NOT NULL,
    t           double precision NOT NULL,
    kind        smallint    NOT NULL,
    price_nanos bigint      NOT NULL,
    quantity    bigint      NOT NULL,
    ask_nanos   bigint      NOT NULL
);
CREATE INDEX monitor_tape_symbol_t ON monitor_tape (symbol, t);
