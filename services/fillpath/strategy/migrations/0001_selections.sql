-- One row per strategy choice, written in the transaction that appends its StrategySelected
-- event (stream strategy-<order id>): what was chosen, on which prediction, at which arrival mid.
-- The realised columns are filled when the order's executions end (performance tracking).
CREATE TABLE strategy_selections (
    order_id           text PRIMARY KEY,
    selected_at        timestamptz NOT NULL,
    symbol             text NOT NULL,
    side               text NOT NULL,
    quantity           bigint NOT NULL,
    strategy           text NOT NULL,
    rule               text NOT NULL,
    algo_profile       text NOT NULL,
    algorithm          text NOT NULL,
    model_version      text NOT NULL,
    regime             text NOT NULL,
    arrival_mid_nanos  bigint NOT NULL,
    predicted_cost_bps double precision NOT NULL,
    predicted_risk_bps double precision NOT NULL,
    realised_cost_bps  double precision,
    executed_quantity  bigint,
    completed_at       timestamptz
);

CREATE INDEX strategy_selections_profile ON strategy_selections (algo_profile, selected_at);
