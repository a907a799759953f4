"""The desired state of one platform at this moment: which manifests to apply, in which stage, and what to keep.

Pure: the reconciler first observes the cluster (`Facts`), then asks `desired()` what the children must be.
Stages make the ordering rules level-based instead of step-by-step, so that an operator restarted at any point
computes the same answer from the same cluster:

1. foundation - ServiceAccount, ConfigMaps, data stores, Services, NetworkPolicies, monitoring: always;
2. migration  - the migration Job of this version: once the managed PostgreSQL (StatefulSet or CloudNativePG
                Cluster) is ready (at once if external);
3. rollout    - service Deployments, PDBs, HPAs, the re-index CronJob: only once that Job has completed, so a new
                version never runs against an old schema;
4. seeding    - the initial re-index Job: once the services are ready, and only if no re-index happened yet.

Children not in the desired set are pruned only when the set is complete (stage 3 reached); before that a missing
Deployment may just be waiting for the migration.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from venta_operator import API_GROUP, API_VERSION, KIND
from venta_operator.builders import Key, Manifest, key_of
from venta_operator.builders.cloudnativepg import cnpg_clusters
from venta_operator.builders.configmap import configmaps
from venta_operator.builders.cronjob import reindex_cronjob
from venta_operator.builders.deployment import infra_deployments, service_deployments
from venta_operator.builders.exporters import external_exporters
from venta_operator.builders.hpa import hpas
from venta_operator.builders.ingress import edge
from venta_operator.builders.job import initial_reindex_job, initial_reindex_name, migration_job
from venta_operator.builders.monitoring import monitoring
from venta_operator.builders.networkpolicy import network_policies
from venta_operator.builders.pdb import pdbs
from venta_operator.builders.secret import credentials_secret, generated_secret_names, keeps_data
from venta_operator.builders.service import services
from venta_operator.builders.serviceaccount import service_account
from venta_operator.builders.statefulset import statefulsets
from venta_operator.naming import ANNOTATION_DESIRED_HASH, digest
from venta_operator.spec import Platform


@dataclass(frozen=True)
class Facts:
    """What the reconciler observed or was given, and the plan depends on (everything else comes from the spec)."""

    uid: str
    available_kinds: frozenset[str] = frozenset()
    dashboards: Mapping[str, str] = field(default_factory=dict)  # file name -> JSON, shipped with the operator
    alert_rules: Sequence[Manifest] = ()  # rule groups of the rule file shipped with the operator
    postgres_ready: bool = False
    migration_complete: bool = False
    services_ready: bool = False
    reindexed: bool = False  # status.lastReindex is set: the initial re-index is done or no longer needed


@dataclass
class Plan:
    apply: list[Manifest] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # generated credentials: create once, never apply
    keep: set[Key] = field(default_factory=set)  # present children that must not be pruned
    stage: str = "foundation"
    prune: bool = False


def owner_reference(p: Platform, uid: str) -> Manifest:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": p.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def finalize(manifest: Manifest, p: Platform, uid: str) -> Manifest:
    """Stamp the hash of the desired state (before stamping) and the owner reference on a builder's output."""
    out = copy.deepcopy(manifest)
    meta = out["metadata"]
    meta.setdefault("annotations", {})[ANNOTATION_DESIRED_HASH] = digest(manifest)
    meta["ownerReferences"] = [owner_reference(p, uid)]
    return out


def desired(p: Platform, facts: Facts) -> Plan:
    plan = Plan(secrets=generated_secret_names(p))
    foundation = [
        service_account(p),
        *configmaps(p, facts.dashboards),
        *statefulsets(p),
        *cnpg_clusters(p, facts.available_kinds),
        *infra_deployments(p),
        *external_exporters(p),
        *services(p),
        *network_policies(p),
        *edge(p, facts.available_kinds),
        *monitoring(p, facts.available_kinds, facts.alert_rules),
    ]
    plan.apply += foundation
    plan.keep |= {("Secret", name) for name in plan.secrets}

    if p.spec.postgres.external is None and not facts.postgres_ready:
        return _finish(plan, p, facts)
    plan.stage = "migration"
    plan.apply.append(migration_job(p))
    if not facts.migration_complete:
        return _finish(plan, p, facts)

    plan.stage = "rollout"
    plan.prune = True
    plan.apply += [*service_deployments(p), *pdbs(p), *hpas(p)]
    cron = reindex_cronjob(p)
    if cron is not None:
        plan.apply.append(cron)
    plan.keep.add(("Job", initial_reindex_name(p.name)))  # finished: kept for its logs until its TTL removes it
    if facts.services_ready and not facts.reindexed and p.spec.search.reindex_on_create:
        plan.stage = "seeding"
        plan.apply.append(initial_reindex_job(p))
    return _finish(plan, p, facts)


def _finish(plan: Plan, p: Platform, facts: Facts) -> Plan:
    plan.apply = [finalize(m, p, facts.uid) for m in plan.apply]
    plan.keep |= {key_of(m) for m in plan.apply}
    return plan


def secret_owned(p: Platform, name: str) -> bool:
    """Generated credentials share the platform's lifetime unless the data they protect outlives it."""
    return not keeps_data(p, name)


def generated_secret(p: Platform, name: str, values: dict[str, str], uid: str) -> Manifest:
    """A generated credentials Secret, stamped the one way the reconciler creates it and `render` prints it."""
    manifest = credentials_secret(p, name, values)
    if secret_owned(p, name):
        manifest["metadata"]["ownerReferences"] = [owner_reference(p, uid)]
    return manifest
