"""Schemathesis hooks for scripts/fuzz.sh: WebAssembly components are sent as raw bytes,
like any binary body (Schemathesis knows application/octet-stream, not application/wasm)."""
import schemathesis
from schemathesis.transport.serialization import serialize_binary


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    return {"data": serialize_binary(value)}
