# Build stage base for the torch images (trainer, llm-cpu) on a machine whose pip finds torch's
# CPU build in a local wheel folder: the python stand-in plus that folder. Runtime stages use the
# plain stand-in, so the wheels never reach a final image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
COPY wheels /opt/wheels
RUN printf 'find-links = /opt/wheels\n' >> /etc/pip.conf
