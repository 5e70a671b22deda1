"""Generated protobuf and gRPC code (`make protos`); never edited by hand."""
