# Stand-in for the official haproxy image, from Debian's haproxy; same entrypoint behaviour
# (flags alone, or `haproxy ...`, run in the foreground as master-worker) and config path.
ARG DEBIAN_IMAGE=intentrec-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
    && mkdir -p /usr/local/etc/haproxy \
    && printf '#!/bin/sh\nif [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi\nif [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi\nexec "$@"\n' \
       > /usr/local/bin/docker-entrypoint.sh \
    && chmod +x /usr/local/bin/docker-entrypoint.sh
USER haproxy
STOPSIGNAL SIGUSR1
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
