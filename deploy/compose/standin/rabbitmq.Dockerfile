# Stand-in for rabbitmq:3-management: Debian's rabbitmq-server (3.10 on bookworm) with the
# management plugin, reading /etc/rabbitmq/conf.d/*.conf as the official image does.
FROM quartet-standin/base:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && mkdir -p /etc/rabbitmq/conf.d \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
COPY rabbitmq-defaults.conf /etc/rabbitmq/conf.d/10-defaults.conf
ENV RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d HOME=/var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672 15672
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
