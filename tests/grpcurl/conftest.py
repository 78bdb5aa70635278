"""grpcurl tests reuse the service tests' real gateway fixtures."""

from tests.service.conftest import gateway, start_gateway, upstream

__all__ = ["gateway", "start_gateway", "upstream"]
