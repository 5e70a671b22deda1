-- The router's decisions are RoutingDecision events in the shared event log (one stream per
-- decision, `routing-<decision id>`). ListDecisions filters them by order and by symbol.

CREATE INDEX events_routing_order ON events ((payload->>'order_id'), position)
    WHERE event_type = 'RoutingDecision';

CREATE INDEX events_routing_symbol ON events ((payload->>'symbol'), position)
    WHERE event_type = 'RoutingDecision';
