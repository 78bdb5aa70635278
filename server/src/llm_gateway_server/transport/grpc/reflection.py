"""Server reflection that serves the contract with its comments.

The generated ``_pb2`` modules carry descriptors without source info, so plain reflection
shows no comments in ``grpcurl describe``. ``make proto`` also writes the descriptors with
their comments (``llmgateway/v1/descriptors.binpb``); this pool serves those for our files
and defers to the default pool for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection


def _documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    data = resources.files("llmgateway.v1").joinpath("descriptors.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    return {f.name: f for f in files}


class _File:
    """A file descriptor whose ``CopyToProto`` keeps the comments, when we have them."""

    def __init__(self, file: Any, documented: Mapping[str, descriptor_pb2.FileDescriptorProto]):
        self._file = file
        self._documented = documented
        self.name: str = file.name

    @property
    def dependencies(self) -> Iterator[_File]:
        return (_File(d, self._documented) for d in self._file.dependencies)

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        documented = self._documented.get(self.name)
        if documented is not None:
            proto.CopyFrom(documented)
        else:
            self._file.CopyToProto(proto)


class _DocumentedPool:
    """The subset of ``DescriptorPool`` that grpc_reflection uses."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool
        self._documented = _documented_files()

    def FindFileByName(self, name: str) -> _File:
        return _File(self._pool.FindFileByName(name), self._documented)

    def FindFileContainingSymbol(self, symbol: str) -> _File:
        return _File(self._pool.FindFileContainingSymbol(symbol), self._documented)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def enable_reflection(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    """Serve reflection for ``service_names``, with the contract's comments."""
    pool = _DocumentedPool(descriptor_pool.Default())
    reflection.enable_server_reflection(service_names, server, pool=pool)
