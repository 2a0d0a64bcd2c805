# syntax=docker/dockerfile:1
# One image for every erx service: the core API, the pharmacy gateway, the public portal, the
# migration step and the housekeeping job. Which one runs is chosen by the command or by
# ERX_SERVICE (see deploy/docker/entrypoint.sh). Build from the repository root:
#   docker build --build-arg ERX_VERSION=1.2.3 -t erx:1.2.3 .
# Pin the base by digest in the release pipeline (--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:…).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: the locked dependencies (hash-checked) and the app, into one virtualenv --------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# The lock alone first, so the dependency layer is reused while only the code changes.
COPY requirements/run.txt requirements/run.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/run.txt
COPY pyproject.toml README.md ./
COPY kit ./kit
COPY erx ./erx
COPY eprescribe ./eprescribe
COPY pharmacy_gateway ./pharmacy_gateway
COPY price_portal ./price_portal
# --no-deps: everything the app needs is already there, from the lock and nowhere else.
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && python -m compileall -q /opt/venv/lib

# ---- runtime: the virtualenv and an unprivileged user, nothing else --------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG ERX_UID=10001
ARG ERX_GID=10001
ARG ERX_VERSION=dev
LABEL org.opencontainers.image.title="erx" \
      org.opencontainers.image.version="${ERX_VERSION}" \
      org.opencontainers.image.description="National e-prescription system: core API, pharmacy gateway, price portal" \
      org.opencontainers.image.source="https://erx.gov.vn"
# Bytecode was compiled in the builder; the root filesystem may be read-only at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    ERX_ENVIRONMENT=production \
    ERX_DATA_DIR=/var/lib/erx \
    ERX_SERVICE=core \
    PORT=8000
RUN groupadd --system --gid "${ERX_GID}" erx \
    && useradd --system --uid "${ERX_UID}" --gid erx --home-dir /var/lib/erx \
       --no-create-home --shell /usr/sbin/nologin erx \
    && install -d -o erx -g erx -m 0750 /var/lib/erx
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/erx-entrypoint
# The only writable path the app needs (SQLite-free in production: generated keys, scratch files).
# Mount a volume there (emptyDir in Kubernetes) when the root filesystem is read-only, and a
# tmpfs on /tmp for uploads the multipart parser spools to disk.
VOLUME ["/var/lib/erx"]
WORKDIR /var/lib/erx
USER ${ERX_UID}:${ERX_GID}
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["erx-entrypoint", "healthcheck"]
ENTRYPOINT ["erx-entrypoint"]
CMD []
