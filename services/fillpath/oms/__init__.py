"""Order management: every parent and child order, its events, fills, amends and cancels, the
audit trail, and the gRPC service trading systems, algorithms and venues talk to."""
