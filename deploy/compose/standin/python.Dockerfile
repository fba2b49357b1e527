# Stand-in for python:X.Y-slim (the Dockerfile's FROM): this machine's own CPython X.Y build
# (staged into python/ by scripts/compose_test.py, only pip in site-packages) under /usr/local,
# with the shared libraries its extension modules link.
FROM quartet-standin/base:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 libsqlite3-0 libffi8 zlib1g libbz2-1.0 \
        liblzma5 libreadline8 libncursesw6 libuuid1 libexpat1 \
    && rm -rf /var/lib/apt/lists/*
COPY python/ /usr/local/
RUN ldconfig && python3 -c "import ssl, sqlite3, ctypes, zlib, bz2, lzma, uuid; print('python', __import__('sys').version)"
CMD ["python3"]
