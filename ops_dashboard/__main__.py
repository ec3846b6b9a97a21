"""Run the dashboard: `python -m ops_dashboard`."""

from __future__ import annotations

import sys

from ops_common.http.serve import serve

from .app import DashboardNotConfigured, create_app


def main() -> int:
    """Serve /ops until SIGTERM/SIGINT."""
    return serve(
        "ops_dashboard",
        create_app,
        lambda s: s.dashboard_host,
        lambda s: s.dashboard_port,
        config_errors=(DashboardNotConfigured,),
    )


if __name__ == "__main__":
    sys.exit(main())
