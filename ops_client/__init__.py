"""The OpsTelemetry client for apps: `track()` events, batched by size and time, gzip'd, each
with its own id so retries are stored once, retried with back-off and jitter (honouring
Retry-After on 429/503), held in a bounded buffer that counts what it drops.

    from ops_client import OpsTelemetry

    telemetry = OpsTelemetry("https://ops.example.com/telemetry", api_key, app="shop", env="prod")
    telemetry.track("checkout", ok=True, latency_ms=87)
    with telemetry.timed("payment"):  # records ok/latency of the block
        charge()

`AsyncOpsTelemetry` is the same for asyncio code (`await telemetry.flush()`, `async with`).
"""

from .async_client import AsyncOpsTelemetry
from .stats import ClientStats
from .sync_client import OpsTelemetry

__all__ = ["AsyncOpsTelemetry", "ClientStats", "OpsTelemetry"]
