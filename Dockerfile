# Ketenpoort gateway: slim, non-root, gunicorn, the same install as the README.
#
# Supply chain: every dependency comes from requirements.lock (exact versions, with
# hashes: `make lock`), the wheel is built from this source by the pinned build backend
# (requirements-build.lock) in a stage of its own, and installed without resolving
# anything more (`--no-deps`); `pip check` proves the lock satisfies the wheel.

# --- build: the wheel, as `make wheel` builds it ------------------------------------
FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-build.lock ./
RUN pip install --require-hashes --no-deps -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /dist .

# --- the gateway --------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 KETENPOORT_LOG_FORMAT=json

# libsodium: the ristretto255 group behind pseudonyms (gateway/crypto/oprf.py, pysodium).
RUN apt-get update && apt-get install -y --no-install-recommends libsodium23 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system ketenpoort && useradd --system --gid ketenpoort --home /srv ketenpoort
WORKDIR /srv
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/ketenpoort-*.whl && rm -rf /tmp/dist && pip check
COPY policies ./policies
# The database and key store folders: the gateway user's alone (security finding 9);
# the gateway also creates its files 0600 whatever the umask.
RUN mkdir -p /srv/var /srv/keys \
    && chown -R ketenpoort:ketenpoort /srv/var /srv/keys && chmod 0700 /srv/var /srv/keys

USER ketenpoort
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
# `ketenpoort serve`: gunicorn's workers serve requests, one process beside them runs the
# background jobs (sequencer, matching, retention, alerts).
CMD ["sh", "-c", "ketenpoort init && exec ketenpoort serve --host 0.0.0.0 --port 8080 --workers 2 --threads 4"]
