# LeviBot Stream application image: the `levibot` CLI (trading flow, Faust apps, topic and schema tools).
#   docker build -t levibot:latest .
# The same image runs every LeviBot service; the command picks the role (see docker-compose.yml, k8s/).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# build dependencies of wheels that have no manylinux build (none today; kept for ta-lib style extras)
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY connectors ./connectors
COPY operators ./operators
COPY schemas ./schemas
RUN python -m venv /opt/levibot && /opt/levibot/bin/pip install --upgrade pip \
    && /opt/levibot/bin/pip install '.[tracing]'

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="levibot" \
      org.opencontainers.image.description="LeviBot Stream: real-time trading decision engine on Kafka and Bytewax" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --home-dir /var/lib/levibot --create-home levibot
COPY --from=build /opt/levibot /opt/levibot
# the sources also live in /app (first on PYTHONPATH) so that REPO_ROOT-relative files such as the bundled
# history in data/market resolve inside the image
COPY pyproject.toml README.md /app/
COPY flows /app/flows
COPY connectors /app/connectors
COPY operators /app/operators
COPY schemas /app/schemas
COPY data/market /app/data/market
ENV PATH=/opt/levibot/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    LEVIBOT_VAR=/var/lib/levibot \
    LEVIBOT_LOG_FORMAT=json \
    LEVIBOT_METRICS_PORT=9464
WORKDIR /app
USER levibot
VOLUME ["/var/lib/levibot"]
EXPOSE 9464 2101
# liveness: the process's own /metrics endpoint answers
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('LEVIBOT_METRICS_PORT','9464'), timeout=4)"
ENTRYPOINT ["levibot"]
CMD ["--help"]
