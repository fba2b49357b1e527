# Stand-in for postgres:16: Debian's PostgreSQL (15 on bookworm) with the parts of the official
# image's contract compose.yaml uses: POSTGRES_USER/POSTGRES_PASSWORD, /docker-entrypoint-initdb.d
# run once on an empty data directory, PGDATA=/var/lib/postgresql/data, pg_isready on PATH.
FROM quartet-standin/base:bookworm
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /docker-entrypoint-initdb.d
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
