# One image for every Venta component: `venta serve <service>`, `venta migrate --all`, `venta reindex`,
# and the operator (`kopf run -m venta_operator.handlers`). The operator sets each container's command.

# The dependencies alone, pinned by the runtime lock (the tests' and linters' tools are in requirements-dev.lock,
# never in the image). This stage, and the layer the image copies from it, change only when requirements.lock does,
# so a change to the sources ships a few hundred kilobytes, not the whole virtualenv. pip byte-compiles what it
# installs, and the .pyc files stay: the root filesystem is read-only at run time, where a process could not cache
# what it compiles, and every start would compile every module again (2 s instead of 0.8 s for `venta --help`).
FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venta \
    && /opt/venta/bin/pip install --requirement /tmp/requirements.lock

FROM python:3.11-slim
ENV PATH=/opt/venta/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 venta \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin venta
COPY --from=deps /opt/venta /opt/venta
WORKDIR /app
COPY pyproject.toml README.md* ./
COPY protos ./protos
COPY services ./services
COPY operator ./operator
# Grafana dashboards and alert rules the operator hands to every platform (VENTA_OPERATOR_DASHBOARDS_DIR, ...).
COPY observability ./observability
# Installed in place (editable) so that non-package files the services read at run time (Alembic migration
# directories, which have no __init__.py) stay where the code expects them. Offline: the virtualenv's own
# setuptools builds the editable wheel; nothing is downloaded in this stage.
RUN pip install --quiet --no-deps --no-index --no-build-isolation --editable . \
    && python -m compileall -q services operator
# Numeric, so that Kubernetes can verify runAsNonRoot without resolving a user name.
USER 10001:10001
CMD ["venta", "--help"]
