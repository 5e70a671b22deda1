"""The fillpath operator (kopf): turns `Venue`, `AlgoProfile` and `ExecutionStrategy` resources
into the running, configured gRPC service of their domain. Handlers are thin (handlers.py);
what the cluster should hold is computed by pure functions (desired.py)."""
