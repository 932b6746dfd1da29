# The one-shot training + export job (compose profile `train`):
#   docker build -f docker/trainer.Dockerfile -t intentrec-trainer .
#   docker run --rm -v intentrec_bundles:/bundles intentrec-trainer
# torch is installed first and explicitly from the CPU wheel index: a bare `torch` requirement
# would pull a multi-GB CUDA build. Outside Docker the same first step is
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# and then `pip install 'intentrec[train,cpu]'` (export needs onnxruntime and faiss for its checks).
# From PyPI alone (no PyTorch index reachable): --build-arg TORCH_INDEX_URL= (an empty value)
# installs PyPI's torch, which runs on a CPU too but brings its CUDA libraries (GBs more), unless
# pip finds the CPU build first (BUILD_IMAGE: a base whose pip has it in a local wheel folder, as
# scripts/build-standins.sh makes where the host has one).

ARG PYTHON_VERSION=3.11
ARG BUILD_IMAGE=python:${PYTHON_VERSION}-slim-bookworm
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

FROM ${BUILD_IMAGE} AS build
LABEL io.intentrec.project=intentrec
ARG TORCH_VERSION
ARG TORCH_INDEX_URL
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ".[train,cpu]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS trainer
LABEL io.intentrec.project=intentrec
RUN groupadd --system --gid 10001 intentrec \
    && useradd --system --uid 10001 --gid intentrec --home-dir /work --create-home intentrec \
    && mkdir -p /runs /bundles /var/lib/intentrec \
    && chown intentrec:intentrec /runs /bundles /var/lib/intentrec
COPY --from=build /opt/venv /opt/venv
# The shipped ml-100k copy (with its NOTICE) is the default training set.
COPY --chown=intentrec:intentrec data/ml-100k /work/data/ml-100k
# The API's data directory (compose: the `api-data` volume), where `intentrec evaluate-refine`
# writes the lift file of `refine=auto`.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 INTENTREC_DATA_DIR=/var/lib/intentrec
USER intentrec
WORKDIR /work
VOLUME ["/runs", "/bundles"]
# Overridden by compose's `trainer` service; this default does the same job.
CMD ["sh", "-c", "intentrec train --data data/ml-100k --model sasrec --out /runs/ml-100k && intentrec export /runs/ml-100k --out /bundles"]
