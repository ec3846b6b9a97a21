# syntax=docker/dockerfile:1
# One image for every ops-telemetry process; the Kubernetes manifests (deploy/k8s) choose the
# command. Build: docker build -t ghcr.io/ops-telemetry/ops-telemetry:<tag> .
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv with the project and its dependencies (all have wheels, so no
# compiler is needed) -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# README.md: pyproject.toml names it as the package's readme, the build needs it.
COPY pyproject.toml README.md ./
COPY ops_common ./ops_common
COPY ingest_gateway ./ingest_gateway
COPY stream_workers ./stream_workers
COPY alert_agent ./alert_agent
COPY ops_dashboard ./ops_dashboard
COPY ops_client ./ops_client
COPY opsctl ./opsctl
COPY devstack ./devstack
# A regular (non-editable) install: the code lives in site-packages, compiled to bytecode.
RUN /opt/venv/bin/pip install .

# --- runtime: the virtualenv, the migrations, an unprivileged user; no build tools -----------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.source="https://github.com/ops-telemetry/ops-telemetry" \
      org.opencontainers.image.title="ops-telemetry" \
      org.opencontainers.image.description="Telemetry gateway, stream workers, alert agent, dashboard and opsctl"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPS_WORKER_DATA_DIR=/var/lib/ops-workers
RUN groupadd --system --gid 10001 ops \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ops \
    && mkdir -p /var/lib/ops-workers \
    && chown 10001:10001 /var/lib/ops-workers
# Same path as in the builder: a virtualenv's scripts point at their interpreter by path.
COPY --from=builder /opt/venv /opt/venv
# opsctl/migrate.py reads the migrations from `<its package's parent>/sql`, which for the
# installed package is site-packages/sql.
COPY sql /opt/venv/lib/python3.11/site-packages/sql
WORKDIR /tmp
USER 10001:10001
EXPOSE 18080 19101 18090 18070
CMD ["python", "-m", "ingest_gateway"]
