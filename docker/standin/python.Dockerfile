# Stand-in for python:3.11-slim-bookworm, from Debian's python3.11 (scripts/build-standins.sh).
# Used only where Docker Hub cannot be reached; the project's Dockerfiles build on it unchanged.
ARG DEBIAN_IMAGE=intentrec-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3-venv python-is-python3 \
       ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man
# The build machine's CA bundle and pip settings, so that pip inside a build reaches the same
# package index the host does (a proxy with its own CA, a mirror).
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
ENV LANG=C.UTF-8
CMD ["python3"]
