"""The operator process's own settings, from VENTA_OPERATOR_* environment variables (set by the Helm chart).

Read when `handlers` is imported, because Kopf's decorators take the timer interval at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_OPERATOR_", extra="ignore", frozen=True)

    # A platform waiting for its next retry holds its worker (Kopf sleeps in it), so this bounds how many platforms
    # converge at once; the load on the API server is bounded separately (reconciler.CONCURRENCY).
    workers: int = Field(default=32, ge=1, le=256, description="platforms reconciled at the same time")
    drift_interval_s: float = Field(default=60.0, ge=1, description="period of the drift-correcting pass")
    retry_delay_s: float = Field(default=5.0, ge=0.1, description="wait before re-checking a converging platform")
    error_delay_s: float = Field(default=30.0, ge=0.1, description="wait after the API server refused a request")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="0 disables the /metrics endpoint")
    dashboards_dir: Path | None = Field(default=None, description="Grafana dashboards (*.json) given to platforms")


def load_dashboards(directory: Path | None) -> dict[str, str]:
    """Dashboard files by name; none when the directory is unset or missing (then no dashboards ConfigMap)."""
    if directory is None or not directory.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(directory.rglob("*.json"))}
