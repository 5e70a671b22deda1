"""The outbox relay as a process of its own: publishes the event log to the cluster's bus."""
