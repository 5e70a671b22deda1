"""Apache Pulsar: the bus adapter and a standalone broker for one machine and the tests."""
