-- The OMS read model: one row per order (parent and child), as its stream's events left it.
-- Written in the same transaction as the events (so a read after a write sees it) and rebuilt
-- from the events by `fillpath replay`.

CREATE TABLE order_view (
    order_id          text        PRIMARY KEY,
    stream_id         text        NOT NULL,
    parent_order_id   text,
    client_order_id   text        NOT NULL,
    account           text        NOT NULL,
    portfolio         text        NOT NULL,
    symbol            text        NOT NULL,
    side              smallint    NOT NULL,
    status            smallint    NOT NULL,
    quantity          bigint      NOT NULL,
    filled_quantity   bigint      NOT NULL,
    leaves_quantity   bigint      NOT NULL,
    working_quantity  bigint      NOT NULL,
    fees_nanos        bigint      NOT NULL,
    venue             text,
    -- When the OMS expires the order (NULL: GTC, or a child).
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    stream_version    integer     NOT NULL,
    -- The whole order (fillpath.infra.codec form), so a listing needs no stream reads.
    document          jsonb       NOT NULL
);

CREATE INDEX order_view_created ON order_view (created_at, order_id);
CREATE INDEX order_view_account_created ON order_view (account, created_at, order_id);
CREATE INDEX order_view_symbol_created ON order_view (symbol, created_at, order_id);
CREATE INDEX order_view_stream ON order_view (stream_id);
-- Live parents with an expiry, for the expiry sweeper (statuses: the live ones of OrderStatus).
CREATE INDEX order_view_expiring ON order_view (expires_at)
    WHERE expires_at IS NOT NULL AND status NOT IN (4, 6, 8, 9);
