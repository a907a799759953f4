"""Spec parsing: the CRD's defaults are the operator's defaults, and a spec the CRD should refuse is a SpecError."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import ALGOLIA, CLERK, EXTERNAL, make
from venta_operator.openapi import apply_defaults
from venta_operator.spec import SpecError, parse_spec


def test_minimal_spec_gets_every_default() -> None:
    spec = make().spec
    assert spec.image.repository == "venta/venta"
    assert spec.services["gateway"].replicas == 2 and spec.services["users"].replicas == 1
    assert spec.nats.managed is not None and spec.nats.external is None
    assert spec.postgres.managed is not None and spec.postgres.managed.storage is not None
    assert spec.postgres.managed.storage.size == "5Gi"
    assert spec.redis.managed is not None
    assert spec.search.provider == "postgres" and spec.search.reindex_schedule == "0 3 * * *"
    assert spec.identity.mode == "local"
    assert spec.resilience.rate_limit == "100/60seconds"
    assert spec.observability.log_level == "INFO"


def test_partial_nested_values_keep_sibling_defaults() -> None:
    spec = make({"services": {"users": {"resources": {"limits": {"memory": "1Gi"}}}}}).spec
    res = spec.services["users"].resources
    assert (res.limits.memory, res.limits.cpu, res.requests.cpu) == ("1Gi", "1", "100m")


def test_external_stores_are_not_defaulted_to_managed() -> None:
    spec = make(EXTERNAL).spec
    assert spec.nats.managed is None and spec.postgres.managed is None and spec.redis.managed is None
    assert spec.postgres.external is not None
    assert spec.postgres.external.port == 5432
    assert spec.postgres.external.credentials_secret_ref.username_key == "username"


def test_apply_defaults_recurses_into_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "object", "default": {}, "properties": {"b": {"type": "integer", "default": 3}}}},
    }
    assert apply_defaults(schema, {}) == {"a": {"b": 3}}
    assert apply_defaults(schema, {"a": {"b": 5}}) == {"a": {"b": 5}}


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"nats": {"managed": {}, "external": {"url": "nats://x:4222"}}}, "spec.nats"),
        ({"postgres": {}}, "spec.postgres"),
        ({"services": {"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}}, "autoscaling"),
        ({"search": {"provider": "algolia"}}, "spec.search.algolia"),
        ({"identity": {"mode": "clerk"}}, "spec.identity.clerk"),
        ({"search": {"provider": "elastic"}}, "spec.search.provider"),
        ({"events": {"provider": "redis"}}, "spec.events.provider"),  # the re-index needs JetStream
        ({"events": {"provider": "kafka"}}, "spec.events.provider"),
    ],
)
def test_bad_specs_raise_spec_error_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        parse_spec({"version": "1", **spec})


def test_missing_version_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="version"):
        parse_spec({})


def test_complete_production_spec_parses() -> None:
    spec = make({**EXTERNAL, "search": ALGOLIA, "identity": CLERK}).spec
    assert spec.search.algolia is not None and spec.search.algolia.app_id == "APP"
    assert spec.identity.clerk is not None and spec.identity.clerk.issuer == "https://clerk.example"
