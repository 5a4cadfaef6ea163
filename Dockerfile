# authsvc container image: build with `docker build -t authsvc .`, then run e.g.
#   docker run -p 8000:8000 -e NEXTAUTH_SECRET=... -e NEXTAUTH_URL=https://shop.example.com \
#     -e DATABASE_URL=postgresql+asyncpg://user:pass@db/authsvc authsvc
# It migrates the database, then serves on port 8000 as an unprivileged user.
# tests/e2e/test_dockerfile.py lints this file (hadolint) and runs its install step, command
# and health check outside Docker.

# --- build: the package and its dependencies in a virtualenv ---------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The runtime dependencies exactly as locked (hashes checked; `make lock` refreshes the
# lock), then the package alone.
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY alembic ./alembic
COPY src ./src
RUN python -m venv /opt/authsvc \
    && /opt/authsvc/bin/pip install --no-cache-dir --require-hashes -r requirements.lock \
    && /opt/authsvc/bin/pip install --no-cache-dir --no-deps .

# --- runtime: the virtualenv only, no build inputs, no root ----------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/authsvc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTHSVC_LOG_FORMAT=json
RUN groupadd --system --gid 10001 authsvc \
    && useradd --system --uid 10001 --gid authsvc --home-dir /var/lib/authsvc --create-home authsvc
COPY --from=build /opt/authsvc /opt/authsvc
USER 10001:10001
WORKDIR /var/lib/authsvc
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["sh", "-c", "authsvc migrate && exec authsvc serve --host 0.0.0.0 --port 8000"]
