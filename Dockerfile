# One image for every Venta component: `venta serve <service>`, `venta migrate --all`, `venta reindex`,
# and the operator (`kopf run -m venta_operator.handlers`). The operator sets each container's command.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venta
# Dependencies first, pinned by the lock: this layer is reused until requirements.lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venta/bin/pip install --requirement /tmp/requirements.lock
WORKDIR /app
COPY pyproject.toml README.md* ./
COPY protos ./protos
COPY services ./services
COPY operator ./operator
# Grafana dashboards the operator hands to every platform (VENTA_OPERATOR_DASHBOARDS_DIR).
COPY observability ./observability
# Installed in place (editable) so that non-package files the services read at run time (Alembic migration
# directories, which have no __init__.py) stay where the code expects them.
RUN /opt/venta/bin/pip install --no-deps --editable . \
    && find /app /opt/venta -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
ENV PATH=/opt/venta/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 venta \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin venta
COPY --from=build /opt/venta /opt/venta
COPY --from=build /app /app
WORKDIR /app
# Numeric, so that Kubernetes can verify runAsNonRoot without resolving a user name.
USER 10001:10001
CMD ["venta", "--help"]
