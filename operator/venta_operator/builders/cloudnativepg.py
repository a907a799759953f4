"""A CloudNativePG `Cluster`: PostgreSQL with replicas and failover, delegated to the operator that does it well.

With `spec.postgres.cloudNativePG` the platform runs no PostgreSQL of its own. It creates one `Cluster`
(postgresql.cnpg.io/v1) whose bootstrap creates the application role and every service database, and the services
use what CloudNativePG generates: the `<cluster>-app` Secret (keys username, password) and the `<cluster>-rw`
Service, which always points at the current primary. The kind is optional: it is built only when the cluster serves
it (the reconciler passes what discovery found); without it the platform says so in its conditions
(`status.store_readiness`) and creates nothing. Pure, like every builder.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.secret import POSTGRES_APP_USER
from venta_operator.components import DATABASES
from venta_operator.naming import child_name, labels
from venta_operator.spec import Platform

CNPG_API = "postgresql.cnpg.io/v1"
CNPG_CLUSTER = "Cluster"
CNPG_KINDS = frozenset({CNPG_CLUSTER})
CNPG_CRD = "clusters.postgresql.cnpg.io"
# The keys of CloudNativePG's generated `<cluster>-app` Secret (a basic-auth Secret, with host, uri, ... besides).
APP_USERNAME_KEY = "username"
APP_PASSWORD_KEY = "password"


def cnpg_cluster_name(platform: str) -> str:
    return child_name(platform, "postgres")


def cnpg_app_secret_name(platform: str) -> str:
    """CloudNativePG's generated credentials of the application role (the owner of the initdb database)."""
    return f"{cnpg_cluster_name(platform)}-app"


def cnpg_rw_service_name(platform: str) -> str:
    """CloudNativePG's Service of the current primary: every write goes there, also after a failover."""
    return f"{cnpg_cluster_name(platform)}-rw"


def bootstrap(owner: str = POSTGRES_APP_USER) -> Manifest:
    """initdb creates the role (owner) and the first database; postInitSQL, run as the superuser in `postgres` after
    the role exists and one statement at a time (CREATE DATABASE refuses a transaction block), the others. The names
    are the components table's constants, never user input."""
    first, *others = DATABASES
    return {
        "initdb": {
            "database": first,
            "owner": owner,
            "postInitSQL": [f'CREATE DATABASE "{db}" OWNER "{owner}"' for db in others],
        }
    }


def cnpg_cluster(p: Platform, available_kinds: frozenset[str]) -> Manifest | None:
    """The `Cluster`, or None when the spec does not ask for one or the cluster does not serve the kind."""
    spec = p.spec.postgres.cloud_native_pg
    if spec is None or CNPG_CLUSTER not in available_kinds:
        return None
    storage: Manifest = {"size": spec.storage.size}
    if spec.storage.storage_class_name:
        storage["storageClass"] = spec.storage.storage_class_name
    cluster: Manifest = {
        "instances": spec.instances,
        "primaryUpdateStrategy": "unsupervised",  # a new image or setting rolls the replicas, then switches over
        "storage": storage,
        "resources": spec.resources.manifest(),
        "bootstrap": bootstrap(),
        "enableSuperuserAccess": False,  # no superuser Secret: the services need only the application role
        # one instance per node, so losing a node loses at most one copy (CloudNativePG's preferred anti-affinity)
        "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
    }
    if spec.image_name:
        cluster["imageName"] = spec.image_name
    return {
        "apiVersion": CNPG_API,
        "kind": CNPG_CLUSTER,
        "metadata": {
            "name": cnpg_cluster_name(p.name),
            "namespace": p.namespace,
            "labels": labels(p.name, "postgres"),
        },
        "spec": cluster,
    }


def cnpg_clusters(p: Platform, available_kinds: frozenset[str]) -> list[Manifest]:
    cluster = cnpg_cluster(p, available_kinds)
    return [cluster] if cluster is not None else []
