"""Execution algorithms: TWAP, VWAP, POV, implementation shortfall, arrival price, iceberg —
schedules of child slices. Its contract is protos/fillpath/v1/algo.proto. So far: the
implementation-shortfall trajectory (trajectory.py); the engine is built by the algorithms
issue."""
