"""Adapters: Postgres event store and projections, the bus, Redis, gRPC plumbing, telemetry,
settings. They convert and wire; decisions belong to the domains."""
