# syntax=docker/dockerfile:1
# The prediction service: `python -m tweetcls serve` on an exported serving bundle (ONNX fp32
# and int8 + tokenizer, the DVC `export` stage's output). Installs `.[serve]` only: no torch,
# Lightning or datasets; the default onnx-int8 backend needs none of them.
#
# Build from the repository root (the context must hold the bundle; .dockerignore keeps
# runs/*/serving and drops the rest of runs/):
#   dvc repro export
#   docker build -f dockerfiles/api.Dockerfile -t tweetcls-api .
#   docker build -f dockerfiles/api.Dockerfile --build-arg SERVING_BUNDLE=runs/x/serving .
# Run: the command is `tweetcls serve`, configured by TWEETCLS_* variables (each flag of
# `tweetcls serve --help` has one; a flag given after the image name beats its variable). The
# request log is SQLite under /app/runs unless TWEETCLS_DATABASE_URL points elsewhere:
#   docker run --rm -p 8000:8000 tweetcls-api
#   docker run --rm -p 8000:8000 -e TWEETCLS_DATABASE_URL=postgresql+psycopg://... \
#     -e TWEETCLS_MAX_BATCH_SIZE=64 tweetcls-api
#   docker run --rm -p 8000:8000 tweetcls-api tweetcls serve --log_text

# Base image of both stages (and of dockerfiles/train.Dockerfile, which has the same default).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: a virtual environment with the package and its locked serving dependencies ---
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/
COPY src ./src
# Build the project wheel, then install exactly it with its `serve` extra at the lock's versions
# into the venv (the runtime stage copies the venv only, not the sources).
RUN pip wheel --no-deps --wheel-dir /build/dist . \
    && pip install --constraint requirements/constraints.txt "$(echo /build/dist/tweetcls-*.whl)[serve]"

# --- runtime: the venv, the bundle and an unprivileged user ---
FROM ${PYTHON_IMAGE} AS runtime

# Path of the serving bundle inside the build context.
ARG SERVING_BUNDLE=runs/pipeline/serving

# TWEETCLS_*: the settings of `tweetcls serve` (the bundle copied below, all interfaces, the
# port); `docker run -e TWEETCLS_...` overrides them.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TWEETCLS_MODEL=/models/serving \
    TWEETCLS_HOST=0.0.0.0 \
    TWEETCLS_PORT=8000

# The service's working directory is the user's home: the default SQLite request log
# (runs/serving/requests.db) is written there. The bundle stays root-owned (read-only).
RUN useradd --no-log-init --uid 10001 --user-group --create-home --home-dir /app tweetcls
COPY --from=builder /opt/venv /opt/venv
COPY ${SERVING_BUNDLE} ${TWEETCLS_MODEL}

WORKDIR /app
USER 10001:10001
EXPOSE ${TWEETCLS_PORT}

# slim has no curl: ask /health with the standard library (a non-2xx answer raises), on the
# port the service reads from TWEETCLS_PORT (also when `docker run -e` changes it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['TWEETCLS_PORT'], timeout=4)"]

CMD ["tweetcls", "serve"]
