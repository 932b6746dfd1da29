# The intentrec API image for CPU machines (onnxruntime + faiss-cpu):
#   docker build -f docker/api.Dockerfile -t intentrec-api:cpu .
# The GPU image (onnxruntime-gpu + faiss-gpu on a CUDA base) is docker/api-gpu.Dockerfile: a
# separate file, so that a CPU build never needs the CUDA base image (the classic builder pulls the
# base of every stage in a file). Neither installs torch: serving reads ONNX bundles only. The
# bundle is not baked in; mount it (compose: the `bundles` volume at /bundles,
# INTENTREC_BUNDLE_DIR=/bundles/current).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS cpu-build
LABEL io.intentrec.project=intentrec
# A compiler only for wheels that may have to be built from source (the image keeps none of it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ".[cpu]" \
    && ! /opt/venv/bin/python -c "import torch" 2>/dev/null

FROM python:${PYTHON_VERSION}-slim-bookworm AS cpu
LABEL io.intentrec.project=intentrec
RUN groupadd --system --gid 10001 intentrec \
    && useradd --system --uid 10001 --gid intentrec --home-dir /var/lib/intentrec --create-home intentrec
COPY --from=cpu-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INTENTREC_DEVICE=cpu \
    INTENTREC_DATA_DIR=/var/lib/intentrec \
    INTENTREC_BUNDLE_DIR=/bundles/current
USER intentrec
WORKDIR /var/lib/intentrec
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["intentrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
