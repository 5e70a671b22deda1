"""The market lab (a deterministic multi-venue market simulator) and the venue gateways the OMS
sends child orders through. Built by the market-lab issue."""
