#!/usr/bin/env bash
# Builds local stand-ins for the public base images the compose stack and the Dockerfiles name,
# from Debian packages, for a machine that cannot pull from Docker Hub (air-gapped, or a mirror of
# Debian and PyPI only). Each name is built only when the image is neither present nor pullable,
# so on a connected machine this does nothing. The compose file and Dockerfiles stay unchanged.
#
#   scripts/build-standins.sh            # needs root (debootstrap), a Docker engine, Debian mirror
#
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian), STANDIN_DIR (/var/tmp/intentrec-
# standins: the bootstrapped root file system), PYTHON_IMAGE, REDIS_IMAGE, PROMETHEUS_IMAGE,
# HAPROXY_IMAGE (the names to provide; defaults are those of docker-compose.yml).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="${STANDIN_DIR:-/var/tmp/intentrec-standins}"
debian_image=intentrec-standin/debian:bookworm
python_image="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
build_image=intentrec-standin/python-build:3.11

missing() {
    # True when the image is not here and cannot be pulled (a failed pull takes a few seconds).
    docker image inspect "$1" >/dev/null 2>&1 && return 1
    docker pull -q "$1" >/dev/null 2>&1 && return 1
    return 0
}

debian_base() {
    docker image inspect "$debian_image" >/dev/null 2>&1 && return 0
    command -v debootstrap >/dev/null || {
        echo "debootstrap is needed to build stand-in images: apt-get install debootstrap" >&2
        exit 1
    }
    echo "==> debootstrap bookworm (minbase) into $work/rootfs"
    rm -rf "$work/rootfs"
    mkdir -p "$work"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
        "$work"/rootfs/usr/share/doc "$work"/rootfs/usr/share/man
    echo "deb $mirror bookworm main" >"$work/rootfs/etc/apt/sources.list"
    tar -C "$work/rootfs" -c . | docker import - "$debian_image" >/dev/null
    echo "    $debian_image: $(docker image inspect -f '{{.Size}}' "$debian_image" | numfmt --to=si)"
}

build() {
    local name="$1" dockerfile="$2" context="$3"
    echo "==> stand-in $name ($dockerfile)"
    docker build -q -t "$name" -f "$here/docker/standin/$dockerfile" "$context" >/dev/null
    echo "    $name: $(docker image inspect -f '{{.Size}}' "$name" | numfmt --to=si)"
}

empty="$(mktemp -d)"
trap 'rm -rf "$empty"' EXIT

if missing "$python_image"; then
    debian_base
    # The host's CA bundle (it may hold a proxy's CA) and the pip settings pip needs to reach
    # the same index; local file indexes and constraints of the host are not copied.
    cp /etc/ssl/certs/ca-certificates.crt "$empty/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$empty/pip.conf"
    index="$(pip config get global.index-url 2>/dev/null || true)"
    [ -n "$index" ] && printf 'index-url = %s\n' "$index" >>"$empty/pip.conf"
    build "$python_image" python.Dockerfile "$empty"
fi

# torch's CPU build: where the PyTorch wheel index is unreachable but the host keeps the wheel in
# a local folder (pip's find-links), the torch images build on the python image plus that folder.
links="$(pip config get global.find-links 2>/dev/null || echo "${PIP_FIND_LINKS:-}")"
if [ -n "$links" ] && [ -d "$links" ] && ! docker image inspect "$build_image" >/dev/null 2>&1; then
    ctx="$(mktemp -d)"
    mkdir "$ctx/wheels"
    cp -l "$links"/*.whl "$ctx/wheels/" 2>/dev/null || cp "$links"/*.whl "$ctx/wheels/"
    docker build -q -t "$build_image" --build-arg PYTHON_IMAGE="$python_image" \
        -f "$here/docker/standin/python-build.Dockerfile" "$ctx" >/dev/null
    rm -rf "$ctx"
    echo "    $build_image: the python image plus $links"
fi

for spec in "${REDIS_IMAGE:-redis:7.4-alpine} redis" \
    "${PROMETHEUS_IMAGE:-prom/prometheus:v3.1.0} prometheus" \
    "${HAPROXY_IMAGE:-haproxy:3.0} haproxy"; do
    read -r name kind <<<"$spec"
    if missing "$name"; then
        debian_base
        build "$name" "$kind.Dockerfile" "$empty"
    fi
done
