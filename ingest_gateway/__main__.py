"""Run the gateway: `python -m ingest_gateway`."""

from __future__ import annotations

import sys

from ops_common.http.serve import serve
from ops_common.settings import ApiKeysInvalid

from .app import create_app


def main() -> int:
    """Serve the gateway until SIGTERM/SIGINT; aiohttp drains in-flight requests first."""
    return serve(
        "ingest_gateway",
        create_app,
        lambda s: s.gateway_host,
        lambda s: s.gateway_port,
        config_errors=(ApiKeysInvalid,),
        shutdown_timeout=lambda s: s.produce_timeout_s + 5,
    )


if __name__ == "__main__":
    sys.exit(main())
