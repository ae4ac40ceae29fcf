# syntax=docker/dockerfile:1
# SHMS: the API server, no development tools. Build: docker build -t shms .
# Three stages: the browser assets from package-lock.json (npm ci, as `make assets`), the Python
# package and its runtime dependencies into a venv (pyproject.toml, no dev extras), then a slim
# runtime with only that venv, run as an unprivileged user.

FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
# The files the pages load: the Makefile's VENDOR_FILES (tests/deploy/test_container.py keeps the
# two lists equal), copied to the same paths under static/vendor.
RUN for f in \
        react/umd/react.production.min.js react/LICENSE \
        react-dom/umd/react-dom.production.min.js react-dom/LICENSE \
        graphiql/graphiql.min.js graphiql/graphiql.min.css graphiql/LICENSE \
        @graphiql/plugin-explorer/dist/index.umd.js @graphiql/plugin-explorer/dist/style.css \
        graphql-ws/umd/graphql-ws.min.js graphql-ws/LICENSE.md; \
    do mkdir -p "vendor/$(dirname "$f")" && cp "node_modules/$f" "vendor/$f" || exit 1; done

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/shms
WORKDIR /src
COPY pyproject.toml README.md ./
COPY *.py ./
COPY api/ api/
COPY auth/ auth/
COPY cache/ cache/
COPY crypto/ crypto/
COPY demo/ demo/
COPY events/ events/
COPY jobs/ jobs/
COPY loaders/ loaders/
COPY models/ models/
COPY notifications/ notifications/
COPY observability/ observability/
COPY resolvers/ resolvers/
COPY routes/ routes/
COPY schema/ schema/
COPY services/ services/
COPY static/ static/
COPY --from=assets /build/vendor/ static/vendor/
# A regular (not editable) install: the runtime stage gets the venv alone, no source tree.
RUN /opt/shms/bin/pip install .

FROM python:3.11-slim-bookworm
# The state folder exists in the image, owned by shms, so a fresh named volume mounted on it is too.
RUN groupadd --system --gid 10001 shms \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/shms --create-home \
        --shell /usr/sbin/nologin shms \
    && install -d -o shms -g shms /var/lib/shms/state
COPY --from=builder /opt/shms /opt/shms
ENV PATH=/opt/shms/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SHMS_STATE_DIR=/var/lib/shms/state
# Numeric, so a runtime that checks runAsNonRoot can tell it is not root.
USER 10001:10001
WORKDIR /var/lib/shms
EXPOSE 8000
# /health/ready answers 200 while MongoDB answers (503 otherwise); urllib is in the image, curl is not.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
CMD ["shms", "serve", "--host", "0.0.0.0", "--port", "8000"]
