# syntax=docker/dockerfile:1
# Training image: `python -m tweetcls <command>` with the full training stack (`.[train]`).
# cloud/vertex-ai-job.yaml runs it (`dvc pull data/raw && torchrun ... -m tweetcls fit ...`).
#
# Build from the repository root; CPU torch by default, a CUDA build by TORCH_VARIANT (any
# variant the PyTorch index lists for the locked torch, e.g. cu128). Every package is at the
# version of the lock, requirements/constraints.txt (torch's is read from it at build time):
#   docker build -f dockerfiles/train.Dockerfile -t tweetcls-train .
#   docker build -f dockerfiles/train.Dockerfile --build-arg TORCH_VARIANT=cu128 -t tweetcls-train:cu128 .
# Run (the default command trains configs/minilm.yaml; fit preprocesses data/raw when
# data/processed is missing):
#   docker run --rm -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" tweetcls-train
#   docker run --rm tweetcls-train test --config configs/minilm.yaml --ckpt_path ...

# Base image of both stages (and of dockerfiles/api.Dockerfile, which has the same default).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: a virtual environment with torch, then the package and its locked deps ---
FROM ${PYTHON_IMAGE} AS builder

# PyTorch wheel index variant: cpu, or a CUDA one (cu126, cu128, ...).
ARG TORCH_VARIANT=cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/
# torch first, alone, from the PyTorch index, at the lock's version (exactly one "torch==X"
# line, else the build fails; the index's "X+cpu" satisfies "torch==X", so the next install
# keeps this build instead of PyPI's CUDA one and resolves torch's dependencies from PyPI).
RUN grep -E '^torch==[^ ;]+$' requirements/constraints.txt > /tmp/torch-pin.txt \
    && test "$(wc -l < /tmp/torch-pin.txt)" -eq 1 \
    && pip install --no-deps --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        --requirement /tmp/torch-pin.txt

COPY src ./src
RUN pip wheel --no-deps --wheel-dir /build/dist . \
    && pip install --constraint requirements/constraints.txt "$(echo /build/dist/tweetcls-*.whl)[train]"

# --- runtime: the venv, the configs and DVC metadata, an unprivileged user ---
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN useradd --no-log-init --uid 10001 --user-group --create-home --home-dir /app tweetcls
COPY --from=builder /opt/venv /opt/venv

# The working tree the CLI and DVC expect: configs, the pipeline and the data pointer
# (`dvc pull data/raw` fetches the data into it). Owned by the user, who writes data/ and runs/.
WORKDIR /app
COPY --chown=10001:10001 configs ./configs
COPY --chown=10001:10001 .dvc/config ./.dvc/config
COPY --chown=10001:10001 .dvcignore dvc.yaml dvc.lock params.yaml ./
COPY --chown=10001:10001 data/raw.dvc ./data/raw.dvc
USER 10001:10001
# No git in the image: DVC must not look for one.
RUN dvc config --local core.no_scm true

# A batch job, not a server: nothing to probe.
HEALTHCHECK NONE

ENTRYPOINT ["python", "-m", "tweetcls"]
CMD ["fit", "--config", "configs/minilm.yaml"]
