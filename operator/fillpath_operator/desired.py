"""What the cluster should hold for the resources of one kind in one namespace: pure functions,
no API calls, so every rule here is unit-tested.

Each kind belongs to a domain service: Venues configure the smart order router, AlgoProfiles the
algorithm engine, ExecutionStrategies the strategy service. For a kind with at least one
resource the operator keeps three objects, named after the domain and owned by every resource of
the kind (so the API server's garbage collector removes them with the last one):
- a ConfigMap holding all the kind's resources rendered as the YAML `fillpath up` reads (the
  service watches the mounted file and hot-reloads it);
- a Deployment of the service, its pod template annotated with the configuration's hash (a
  change that needs a restart rolls the pods; a hot-reloadable one could drop it later);
- a Service in front of it (gRPC).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

GROUP = "fillpath.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGED_BY = "fillpath-operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class Domain:
    kind: str
    plural: str
    service: str  # the domain service: sor, algo, strategy
    module: str  # the image runs `python -m <module>`
    port: int
    config_file: str
    reads: tuple[str, ...] = ()
    """Other kinds the service reads too, rendered into its ConfigMap beside its own (the
    strategy service checks its rules' overrides against the AlgoProfiles' bounds)."""
    single_owner: bool = False
    """One process owns every piece of the domain's live state (the algorithm engine owns its
    executions and hears their fills on one shared subscription): one replica, and an update
    stops the old pod before the new one takes up the executions (Recreate)."""


DOMAINS: dict[str, Domain] = {
    "Venue": Domain(
        kind="Venue", plural="venues", service="sor", module="fillpath.sor.main",
        port=50071, config_file="venues.yaml",
    ),
    "AlgoProfile": Domain(
        kind="AlgoProfile", plural="algoprofiles", service="algo", module="fillpath.algo.main",
        port=50081, config_file="algoprofiles.yaml", single_owner=True,
    ),
    "ExecutionStrategy": Domain(
        kind="ExecutionStrategy", plural="executionstrategies", service="strategy",
        module="fillpath.strategy.main", port=50091, config_file="executionstrategies.yaml",
        reads=("AlgoProfile",),
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the operator deploys services (from its own environment, see handlers.py)."""

    image: str = "ghcr.io/fillpath/fillpath:0.1.0"
    """The service image."""

    replicas: int = 1
    env_from_secret: str = ""
    """A Secret whose keys become the service's environment (FILLPATH_PG_DSN, …)."""
    oms_address: str = ""
    """Where the services reach the OMS (the chart's OMS Service), host:port."""


def name_of(domain: Domain) -> str:
    return f"fillpath-{domain.service}"


def labels(domain: Domain) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name_of(domain),
        "app.kubernetes.io/component": domain.service,
        "app.kubernetes.io/part-of": "fillpath",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def render_config(domain: Domain, resources: Sequence[Mapping[str, Any]]) -> str:
    """The resources as the multi-document YAML `fillpath up` reads: apiVersion, kind, name and
    spec of each, sorted by name (so the same set renders the same bytes)."""
    documents = [
        {
            "apiVersion": API_VERSION,
            "kind": domain.kind,
            "metadata": {"name": r["metadata"]["name"]},
            "spec": r.get("spec", {}),
        }
        for r in sorted(resources, key=lambda r: str(r["metadata"]["name"]))
    ]
    return yaml.safe_dump_all(documents, sort_keys=True)


def owner_references(resources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every resource of the kind owns the children; the first (by name) is the controller."""
    ordered = sorted(resources, key=lambda r: str(r["metadata"]["name"]))
    return [
        {
            "apiVersion": API_VERSION,
            "kind": r["kind"],
            "name": r["metadata"]["name"],
            "uid": r["metadata"]["uid"],
            "controller": i == 0,
            "blockOwnerDeletion": False,
        }
        for i, r in enumerate(ordered)
    ]


def _metadata(
    domain: Domain, namespace: str, resources: Sequence[Mapping[str, Any]], name: str
) -> dict[str, Any]:
    """A child's metadata: its name, the domain's labels, owned by the kind's resources."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(domain),
        "ownerReferences": owner_references(resources),
    }


def config_map(
    domain: Domain,
    namespace: str,
    resources: Sequence[Mapping[str, Any]],
    read: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The service's configuration: its kind's resources, and those of the kinds it `reads`
    (`read`: kind → its resources)."""
    data = {domain.config_file: render_config(domain, resources)}
    for kind, others in (read or {}).items():
        data[DOMAINS[kind].config_file] = render_config(DOMAINS[kind], others)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(domain, namespace, resources, f"{name_of(domain)}-config"),
        "data": data,
    }


def config_hash(config: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(config["data"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def deployment(
    domain: Domain,
    namespace: str,
    resources: Sequence[Mapping[str, Any]],
    settings: Settings,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    name = name_of(domain)
    env = [
        {"name": "FILLPATH_CONFIG_DIR", "value": "/etc/fillpath"},
        {"name": f"FILLPATH_{domain.service.upper()}_ADDRESS", "value": f"0.0.0.0:{domain.port}"},
    ]
    if domain.service == "algo":  # it places through the OMS what the router allocates
        sor = DOMAINS["Venue"]
        env.append(
            {"name": "FILLPATH_SOR_ADDRESS", "value": f"{name_of(sor)}.{namespace}.svc:{sor.port}"}
        )
        if settings.oms_address:
            env.append({"name": "FILLPATH_OMS_ADDRESS", "value": settings.oms_address})
    container: dict[str, Any] = {
        "name": domain.service,
        "image": settings.image,
        "args": [domain.module],  # the image's entrypoint is `python -m`
        "ports": [{"name": "grpc", "containerPort": domain.port}],
        "env": env,
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/fillpath", "readOnly": True},
            # numba's kernel cache: the root filesystem is read-only.
            {"name": "cache", "mountPath": "/var/cache/fillpath"},
        ],
        "readinessProbe": {"grpc": {"port": domain.port}, "periodSeconds": 5},
        "livenessProbe": {"grpc": {"port": domain.port}, "periodSeconds": 20},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if settings.env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.env_from_secret}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(domain, namespace, resources, name),
        "spec": {
            "replicas": 1 if domain.single_owner else settings.replicas,
            "strategy": {"type": "Recreate" if domain.single_owner else "RollingUpdate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {
                    "labels": labels(domain),
                    "annotations": {"fillpath.io/config-hash": config_hash(config)},
                },
                "spec": {
                    "containers": [container],
                    "automountServiceAccountToken": False,
                    "volumes": [
                        {"name": "config", "configMap": {"name": config["metadata"]["name"]}},
                        {"name": "cache", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service(
    domain: Domain, namespace: str, resources: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(domain, namespace, resources, name_of(domain)),
        "spec": {
            "selector": {"app.kubernetes.io/name": name_of(domain)},
            "ports": [{"name": "grpc", "port": domain.port, "targetPort": "grpc"}],
        },
    }


def children(
    domain: Domain,
    namespace: str,
    resources: Sequence[Mapping[str, Any]],
    settings: Settings,
    read: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Everything the kind's resources need in the namespace (nothing when there are none);
    `read`: the resources of the kinds the domain also reads."""
    if not resources:
        return []
    config = config_map(domain, namespace, resources, read)
    return [
        config,
        deployment(domain, namespace, resources, settings, config),
        service(domain, namespace, resources),
    ]


def condition(
    previous: Sequence[Mapping[str, Any]],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: str,
) -> dict[str, Any]:
    """A status condition; its lastTransitionTime stays when the status did not change."""
    text = "Unknown" if status is None else ("True" if status else "False")
    before = next((c for c in previous if c.get("type") == type_), None)
    since = before["lastTransitionTime"] if before and before.get("status") == text else now
    return {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def strategy_problems(strategy: Mapping[str, Any], profiles: Mapping[str, str]) -> list[str]:
    """What an ExecutionStrategy names that does not exist (`profiles`: name → algorithm)."""
    spec = strategy.get("spec", {})
    problems = []
    default = spec.get("defaultProfile")
    if default and default not in profiles:
        problems.append(f"defaultProfile {default!r} is not an AlgoProfile in this namespace")
    for rule in spec.get("rules", []):
        for profile in (rule.get("profile", {}), *rule.get("candidates", ())):
            name, algorithm = profile.get("name"), profile.get("algorithm")
            if name not in profiles:
                problems.append(f"rule {rule.get('name')!r}: AlgoProfile {name!r} does not exist")
            elif profiles[name] != algorithm:
                problems.append(
                    f"rule {rule.get('name')!r}: AlgoProfile {name!r} is {profiles[name]}, "
                    f"not {algorithm}"
                )
    return problems


def algo_summary(spec: Mapping[str, Any]) -> str:
    """The participation bounds at a glance (a printer column)."""
    participation = spec.get("participation")
    if not participation:
        return "-"
    return f"{participation['min']:.0%}–{participation['max']:.0%}"


@dataclass(frozen=True, slots=True)
class Connected:
    """The Venue's Connected condition, as the router's report makes it."""

    status: bool | None
    reason: str
    message: str


def venue_quality(
    figures: Sequence[Mapping[str, Any]], reported_at: str
) -> tuple[dict[str, Any] | None, Connected]:
    """A Venue's `status.quality` and Connected condition from the router's figures for it, one
    mapping per instrument (GetVenueQuality's fields: score, liquidity, latency_micros, cost_bps,
    fill_rate, markout_bps, available, circuit — closed, open or half-open).

    The quality figures are means over the instruments the router has a market for (cost and
    fill rate over those where they are known); the circuit is the venue's, not an instrument's.
    """
    if not figures:
        return None, Connected(
            None, "NoMarketData", "the smart order router has no market for any instrument yet"
        )
    available = sum(1 for f in figures if f["available"])
    quality: dict[str, Any] = {
        "instruments": len(figures),
        "availableFor": available,
        "circuit": figures[0]["circuit"],
        "reportedAt": reported_at,
    }
    for key, field in (
        ("score", "score"),
        ("liquidity", "liquidity"),
        ("latencyMicros", "latency_micros"),
        ("costBps", "cost_bps"),
        ("fillRate", "fill_rate"),
        ("markoutBps", "markout_bps"),
    ):
        known = [float(f[field]) for f in figures if f[field] is not None]
        if known:
            quality[key] = round(sum(known) / len(known), 4)
    circuit = quality["circuit"]
    if circuit == "open":
        connected = Connected(
            False, "CircuitOpen",
            "the router took it out of routing after consecutive failures; it probes it again "
            "after the cool-down",
        )  # fmt: skip
    elif circuit == "half-open":
        connected = Connected(None, "Probing", "the cool-down is over: the next route probes it")
    elif available:
        connected = Connected(
            True, "Routing", f"routed to for {available} of {len(figures)} instruments"
        )
    else:
        connected = Connected(
            False, "NotRoutable", "disabled, or no instrument has a market there yet"
        )
    return quality, connected
