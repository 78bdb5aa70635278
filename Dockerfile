# syntax=docker/dockerfile:1
#
# llm-gateway image: two stages.
#   builder: uv (pinned, hash-checked) installs the locked dependencies from uv.lock into /opt/venv.
#   runtime: python:3.11-slim with only that venv and the health probe; runs as a non-root user.
#
# Build:  docker build -t llm-gateway:0.1.0 .
# Run:    docker run -p 50051:50051 -p 9464:9464 \
#           -v "$PWD/my-gateway.yaml:/etc/llm-gateway/config.yaml:ro" \
#           -e LLM_GATEWAY_CONFIG=/etc/llm-gateway/config.yaml llm-gateway:0.1.0
# Without LLM_GATEWAY_CONFIG (or --config) the gateway uses the config its package ships.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

# uv itself comes from the project's hash-locked bootstrap file (the same uv `make install` uses).
COPY requirements/bootstrap.txt /tmp/uv-requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/uv-requirements.txt

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
COPY server/pyproject.toml server/README.md server/
COPY clients/python/pyproject.toml clients/python/README.md clients/python/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --package llm-gateway \
        --no-install-workspace --no-editable

# Then the two workspace packages themselves, installed as wheels (not editable) so the
# runtime stage needs only /opt/venv.
COPY server/ server/
COPY clients/python/ clients/python/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --package llm-gateway --no-editable


# Same base as the builder: the venv's interpreter path (/usr/local/bin/python3.11) must match.
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="llm-gateway" \
      org.opencontainers.image.description="gRPC gateway in front of local and cloud LLM providers" \
      org.opencontainers.image.licenses="MIT"

# A fixed, high UID/GID so Kubernetes runAsUser/runAsGroup/fsGroup can name it.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway

# The shipped default config listens on loopback only (safe on a laptop); a container must
# listen on all its interfaces to be reachable, so the image says so explicitly: gRPC with
# --listen (CMD below), HTTP and metrics with the variables the shipped config reads.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OTEL_SERVICE_NAME=llm-gateway \
    LLM_GATEWAY_METRICS_LISTEN=0.0.0.0:9464 \
    LLM_GATEWAY_HTTP_LISTEN=0.0.0.0:8000

COPY --from=builder /opt/venv /opt/venv
COPY deploy/docker/grpc_health_check.py /opt/llm-gateway/grpc_health_check.py

USER 10001:10001
WORKDIR /opt/llm-gateway

# 50051: gRPC (GatewayService, grpc.health.v1.Health, reflection). 8000: the HTTP facades
# (OpenAI /v1/*, Ollama /api/*). 9464: Prometheus /metrics.
EXPOSE 50051 8000 9464

# Liveness of the process (service ""), not readiness: a container whose upstreams are down
# is alive and must not be restarted for it (Kubernetes uses its own readiness probe).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/llm-gateway/grpc_health_check.py", "--target", "127.0.0.1:50051", "--service", ""]

# Docker stops with SIGTERM; the gateway drains in-flight calls before exiting.
ENTRYPOINT ["llm-gateway", "serve"]
CMD ["--listen", "0.0.0.0:50051"]
