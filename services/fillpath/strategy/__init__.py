"""Execution strategy: which algorithm profile, urgency and venues an order gets (rules from
ExecutionStrategy resources, a learned cost model, performance tracking). Its contract is
protos/fillpath/v1/strategy.proto; the service is built by the strategy issue."""
