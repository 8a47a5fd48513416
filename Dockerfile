# Pinwall in a container: `docker build -t pinwall .`, then see compose.yaml.
#
# The base is Python's slim image (Debian). Where Docker Hub cannot be reached, build one
# from Debian's packages and pass it: --build-arg BASE=<that image> (deploy/README.md).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app app
COPY adapters adapters
COPY bot bot
COPY jobs jobs
COPY store store
RUN python3 -m venv /opt/pinwall \
 && /opt/pinwall/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${BASE}
# pg_dump/pg_restore for `pinwall backup` against PostgreSQL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home pinwall \
 && mkdir -p /data && chown pinwall:pinwall /data
COPY --from=build /opt/pinwall /opt/pinwall
COPY deploy/entrypoint.sh /usr/local/bin/pinwall-entrypoint
ENV PATH=/opt/pinwall/bin:$PATH \
    PINWALL_DATA_DIR=/data \
    PINWALL_DATABASE_URL=sqlite:////data/pinwall.db \
    PINWALL_HTTP_HOST=0.0.0.0 \
    PINWALL_HTTP_PORT=8080 \
    PINWALL_SECRETS_DIR=/run/secrets \
    PINWALL_CONSOLE=off \
    PYTHONUNBUFFERED=1
USER pinwall
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PINWALL_HTTP_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["pinwall-entrypoint"]
CMD ["run"]
