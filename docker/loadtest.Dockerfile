# The load generator for the compose profile `loadtest`: `intentrec loadtest` (Locust headless,
# CSV + HTML report, latency plot, SLO gate). No inference back-end and no torch.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
LABEL io.intentrec.project=intentrec
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install ".[loadtest]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS loadtest
LABEL io.intentrec.project=intentrec
RUN groupadd --system --gid 10001 intentrec \
    && useradd --system --uid 10001 --gid intentrec --create-home intentrec
COPY --from=build /opt/venv /opt/venv
# Compose may run this as the host's uid (no home directory): keep caches in /tmp.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 MPLCONFIGDIR=/tmp/matplotlib MPLBACKEND=Agg
USER intentrec
WORKDIR /tmp
CMD ["intentrec", "loadtest", "--help"]
