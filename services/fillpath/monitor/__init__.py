"""Execution monitoring: live tracking, transaction cost analysis, alerts and reports. Its
contract is protos/fillpath/v1/monitor.proto; the service is built by the monitoring issue."""
