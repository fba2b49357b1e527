# Stand-in for redis:7-alpine: Debian's redis-server (7.0 on bookworm). Like the official image,
# protected mode is off (the container's network is the boundary), so other containers connect.
FROM quartet-standin/base:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-server.sh /usr/local/bin/redis-server
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
