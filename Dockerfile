# One image for every Quartet process; compose.yaml (or Kubernetes) picks the command:
#   docker run quartet:dev python -m services.ping
FROM python:3.11-slim

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

# Dependencies first, in their own layer: the runtime dependencies of pyproject.toml,
# pinned by constraints.txt (the same pins as the venv and CI).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
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
