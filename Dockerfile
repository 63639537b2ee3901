# syntax=docker/dockerfile:1
# One image for both roles of the scaled deployment (docker-compose.yml):
#   docker run IMAGE api      the FastAPI service (webhooks, status, approvals)
#   docker run IMAGE worker   the Temporal worker (applies DB migrations at start)
# Configuration comes only from the environment (COMMERCE_SYNC_*, DATABASE_URL);
# nothing secret is baked in (.dockerignore keeps .env out of the build context).

# ---- build: install the project and its runtime dependencies into a venv ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY commerce_sync ./commerce_sync
# The project itself, not editable and without the `dev` extra.
RUN pip install .

# ---- runtime: the venv only, run as an unprivileged user ----
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COMMERCE_SYNC_DATA_DIR=/var/lib/commerce-sync \
    COMMERCE_SYNC_API_HOST=0.0.0.0 \
    COMMERCE_SYNC_API_PORT=8000

RUN groupadd --system --gid 10001 commerce-sync \
    && useradd --system --uid 10001 --gid commerce-sync \
        --home-dir /var/lib/commerce-sync --create-home \
        --shell /usr/sbin/nologin commerce-sync

COPY --from=build /opt/venv /opt/venv

WORKDIR /var/lib/commerce-sync
USER 10001:10001

EXPOSE 8000

ENTRYPOINT ["commerce-sync"]
CMD ["--help"]
