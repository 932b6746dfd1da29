# The intentrec API image for NVIDIA GPUs (onnxruntime-gpu + faiss-gpu on a CUDA 12 + cuDNN base):
#   docker build -f docker/api-gpu.Dockerfile -t intentrec-api:gpu .
# The CPU image is docker/api.Dockerfile. Neither installs torch: serving reads ONNX bundles only.
# The bundle is not baked in; mount it (compose: the `bundles` volume at /bundles).

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS gpu-build
LABEL io.intentrec.project=intentrec
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ".[gpu]" \
    && ! /opt/venv/bin/python -c "import torch" 2>/dev/null

FROM ${CUDA_IMAGE} AS gpu
LABEL io.intentrec.project=intentrec
# Same base as the build stage, so the venv's interpreter path (/usr/bin/python3) is the same.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 intentrec \
    && useradd --system --uid 10001 --gid intentrec --home-dir /var/lib/intentrec --create-home intentrec
COPY --from=gpu-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INTENTREC_DEVICE=cuda \
    INTENTREC_DATA_DIR=/var/lib/intentrec \
    INTENTREC_BUNDLE_DIR=/bundles/current
USER intentrec
WORKDIR /var/lib/intentrec
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# 0.0.0.0 inside the container only; compose publishes the port on the host's 127.0.0.1 by default.
CMD ["intentrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
