-- Performance tracking: the parent fills of every order the strategy chose for (by exec id, so a
-- redelivered event counts once); when the order ends, its realised cost against the arrival
-- mid goes on its strategy_selections row beside the prediction.
CREATE TABLE strategy_fills (
    exec_id     text PRIMARY KEY,
    order_id    text NOT NULL REFERENCES strategy_selections (order_id),
    quantity    bigint NOT NULL,
    price_nanos bigint NOT NULL
);

CREATE INDEX strategy_fills_order ON strategy_fills (order_id);
CREATE INDEX strategy_selections_completed ON strategy_selections (completed_at)
    WHERE completed_at IS NOT NULL;
