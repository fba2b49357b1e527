# One image for every Quartet process; compose.yaml (or Kubernetes) picks the command:
#   docker run quartet:dev python -m services.ping
# Python 3.13: the newest of the three the suite runs on (3.11, 3.12, 3.13) that every locked
# dependency supports; CI runs the tests on it too (.ci/run).

# Stage 1: the runtime part of uv.lock as a requirements file with every hash (`uv export`), by
# the uv that uv.lock itself holds, installed hash-checked (scripts/lockfile.py uv-requirement).
FROM python:3.13-slim AS lock
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY scripts/lockfile.py ./scripts/
RUN python scripts/lockfile.py uv-requirement > /tmp/uv.txt \
    && pip install --require-hashes --no-deps -r /tmp/uv.txt \
    && uv export --locked --no-dev --no-emit-project --format requirements-txt --no-header > /requirements.txt

FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# The PDF report fonts (TrueType; services/reports/pdf_fonts.py): without them the report worker
# refuses to start.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-droid-fallback fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: the runtime dependencies exactly as uv.lock holds
# them (the same versions and hashes as the venv and CI), every hash required; no uv in the image.
COPY --from=lock /requirements.txt /tmp/requirements.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (PYTHONPATH), not from site-packages, so each service finds
# its migrations/*.sql and the gateway finds web/ beside the code.
COPY services ./services
COPY gateway ./gateway
COPY web ./web

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin quartet
# Numeric, so Kubernetes can check runAsNonRoot without resolving the name.
USER 10001:10001

EXPOSE 8080 8001 8002 8003 8004
# Every service binds 127.0.0.1 by default; in a container it must listen on all interfaces.
ENV HOST=0.0.0.0
CMD ["python", "-m", "gateway"]
