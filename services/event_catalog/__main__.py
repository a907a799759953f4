"""`python -m services.event_catalog`: rewrite the schema snapshots, refusing (exit 1) any breaking change."""

from services.event_catalog import CATALOG
from services.kit.events.compatibility import write_snapshots

raise SystemExit(write_snapshots(CATALOG))
