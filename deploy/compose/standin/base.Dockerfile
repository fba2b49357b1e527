# The stand-ins' common base: the debootstrapped Debian (imported as quartet-standin/debootstrap)
# plus this machine's way out to the package registries: its CA files (a TLS-terminating
# egress proxy signs with its own CA), its pip configuration and Debian's apt sources.
# Built by scripts/compose_test.py only where no image registry answers (docs/running.md).
FROM quartet-standin/debootstrap:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
COPY machine/ /
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates netbase tzdata \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*
