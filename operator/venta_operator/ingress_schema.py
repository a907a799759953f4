"""The schema of `VentaPlatform.spec.ingress`: one public host for the gateway's API and the live map, over TLS.

Field names follow the Kubernetes and Helm ecosystem (`enabled`, `className`, `host`, `annotations`,
`tls.secretName`, cert-manager's `issuerRef`, Gateway API's `parentRef` spelled `gatewayRef`), so that a value a user
knows from a chart means the same here. Kept apart from `spec_schema.py` only for size; its defaults are the only
defaults, like every other section's.
"""

from __future__ import annotations

from venta_operator.openapi import Schema, boolean, obj, rule, string

# RFC 1123 host names, lower case, with an optional leading wildcard label (cert-manager and Ingress accept both).
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _issuer_ref() -> Schema:
    return obj(
        {
            "name": string(253, pattern=DNS_SUBDOMAIN, description="The Issuer or ClusterIssuer."),
            "kind": string(
                16,
                enum=["Issuer", "ClusterIssuer"],
                default="Issuer",
                description="Issuer (in the platform's namespace) or ClusterIssuer.",
            ),
            "group": string(
                253, default="cert-manager.io", description="The issuer's API group (an external issuer's own)."
            ),
        },
        required=("name",),
        description="The cert-manager issuer that signs the certificate.",
    )


def _tls() -> Schema:
    return obj(
        {
            "secretName": string(
                253,
                pattern=DNS_SUBDOMAIN,
                description="The kubernetes.io/tls Secret (keys tls.crt and tls.key) in the platform's namespace "
                "holding the host's certificate: yours, or the one cert-manager writes when certManager is set.",
            ),
            "certManager": obj(
                {"issuerRef": _issuer_ref()},
                required=("issuerRef",),
                description="Have cert-manager issue the certificate into secretName (a cert-manager.io/v1 "
                "Certificate, when the cluster serves that kind).",
            ),
        },
        description="TLS for the host; without it the Ingress serves plain HTTP.",
        rules=(
            rule(
                "has(self.secretName)",
                "ingress.tls.secretName is required: the Secret holding the certificate (cert-manager writes it "
                "when tls.certManager is set)",
                ".secretName",
                "FieldValueRequired",
            ),
        ),
    )


def _gateway_ref() -> Schema:
    return obj(
        {
            "name": string(253, pattern=DNS_SUBDOMAIN, description="The Gateway."),
            "namespace": string(
                63, pattern=DNS_LABEL, description="The Gateway's namespace; the platform's when omitted."
            ),
            "sectionName": string(
                253, pattern=DNS_SUBDOMAIN, description="The Gateway's listener to attach to; all of them if omitted."
            ),
        },
        required=("name",),
        description="Attach an HTTPRoute to this Gateway API Gateway instead of creating an Ingress (when the "
        "cluster serves gateway.networking.k8s.io/v1 HTTPRoute). TLS terminates at the Gateway's listener.",
    )


def ingress() -> Schema:
    return obj(
        {
            "enabled": boolean(
                False, "Publish the gateway's API and the live map (Socket.IO, /socket.io) on one host."
            ),
            "className": string(
                253, pattern=DNS_SUBDOMAIN, description="The IngressClass; the cluster's default class when omitted."
            ),
            "host": string(253, pattern=HOST_PATTERN, description="The public host name, e.g. api.venta.example."),
            "annotations": {
                "type": "object",
                "maxProperties": 32,
                "additionalProperties": string(4096),
                "description": "Added to the Ingress (or HTTPRoute); they win over the operator's WebSocket "
                "timeouts and affinity annotations.",
            },
            "tls": _tls(),
            "gatewayRef": _gateway_ref(),
        },
        default={},
        description="The public door: an Ingress (or a Gateway API HTTPRoute) for the gateway and the live map.",
        rules=(
            rule(
                "!self.enabled || has(self.host)",
                "ingress.host is required when ingress.enabled is true",
                ".host",
                "FieldValueRequired",
            ),
            rule(
                "!has(self.gatewayRef) || !has(self.className)",
                "set ingress.className (an Ingress) or ingress.gatewayRef (an HTTPRoute), not both",
                ".gatewayRef",
                "FieldValueForbidden",
            ),
        ),
    )
