# Stand-in for the official redis image, from Debian's redis-server. The official image turns
# protected mode off (the container network is its boundary); Debian's binary does not, so the
# entrypoint says so on the command line, as it binds every interface of the container.
ARG DEBIAN_IMAGE=intentrec-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
    && mkdir /data && chown redis:redis /data \
    && printf '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; set -- redis-server --bind "0.0.0.0 ::" --protected-mode no "$@"; fi\nexec "$@"\n' \
       > /usr/local/bin/docker-entrypoint.sh \
    && chmod +x /usr/local/bin/docker-entrypoint.sh
USER redis
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
