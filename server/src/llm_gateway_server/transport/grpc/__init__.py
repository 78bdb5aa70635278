"""The gRPC transport: servicer, proto <-> core conversion, status mapping, reflection."""
