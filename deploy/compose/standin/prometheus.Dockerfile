# Stand-in for prom/prometheus: Debian's prometheus (2.42 on bookworm); entrypoint, working
# directory and user as in the official image, and wget for compose.yaml's health check. Debian's
# build keeps its data in /var/lib/prometheus/metrics2 by default: writable by that user too.
FROM quartet-standin/base:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /var/lib/prometheus/metrics2 \
    && chown -R nobody:nogroup /prometheus /var/lib/prometheus
WORKDIR /prometheus
USER nobody
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
