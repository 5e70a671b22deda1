-- The event store (ARCHITECTURE.md §3): one append-only table, snapshots, relay and consumer
-- bookkeeping.

CREATE TABLE events (
    -- Global order of every event. Appends take a transaction-level advisory lock before they
    -- draw a position, so positions become visible in increasing order and a reader that has
    -- seen position p will never later find an event below p.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL CHECK (schema_version > 0),
    -- json, not jsonb: the text is kept exactly as written, so the hash over it can be checked
    -- again (jsonb normalises numbers, e.g. 1e16 comes back as 10000000000000000).
    payload         json        NOT NULL,
    metadata        json        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- SHA-256 over the previous event's hash and this event's canonical JSON (tamper evidence).
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea       NOT NULL CHECK (length(hash) = 32),
    -- Optimistic concurrency: two writers cannot both append version n of a stream.
    UNIQUE (stream_id, stream_version)
);

-- A stored event is never rewritten or removed.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- The latest snapshot of each stream, with the hash of the event it was taken at (so a writer
-- that loads from it can extend the hash chain without reading that event).
CREATE TABLE snapshots (
    stream_id       text        PRIMARY KEY,
    stream_version  integer     NOT NULL,
    schema_version  smallint    NOT NULL,
    state           json        NOT NULL,
    stream_hash     bytea       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- How far each outbox relay has published.
CREATE TABLE relay_checkpoints (
    relay       text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer has handled: written in the consumer's own transaction, so a redelivered
-- event is recognised and skipped (effectively-once at the consumer).
CREATE TABLE consumer_inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
