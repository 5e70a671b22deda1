"""The kopf handlers: thin. Each event on a fillpath resource re-reconciles its kind in its
namespace — the desired children computed by desired.py, applied with server-side apply (so a
repeat changes nothing) — and writes the resource's status: `observedGeneration` and conditions.

Run with ``kopf run --standalone -m fillpath_operator.handlers`` (the chart does). Settings come
from the environment, read once at start-up: FILLPATH_OPERATOR_IMAGE (the services' image),
FILLPATH_OPERATOR_REPLICAS, FILLPATH_OPERATOR_ENV_SECRET (a Secret of FILLPATH_* connection
settings for the services), FILLPATH_OPERATOR_OMS_ADDRESS (where the algorithm engine reaches the
OMS), FILLPATH_OPERATOR_INTERVAL (seconds between status refreshes).

A Venue's status also carries what the smart order router reports of it (GetVenueQuality, on
the SOR Service this operator created, or FILLPATH_OPERATOR_SOR_ADDRESS): the quality figures
and the Connected condition, refreshed with the rest.

Errors: an API call that fails for a reason that may pass (a 5xx, a conflict, the server
unreachable) raises kopf.TemporaryError and kopf retries with back-off; a resource that cannot
work as written (an ExecutionStrategy naming an AlgoProfile that does not exist) is reported in
its conditions and not retried until it changes.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from typing import Any

import grpc
import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from fillpath.api.v1 import routing_pb2
from fillpath.api.v1.routing_pb2_grpc import RoutingServiceStub
from fillpath_operator import desired
from fillpath_operator.desired import DOMAINS, GROUP, VERSION, Connected, Domain

log = logging.getLogger("fillpath.operator")
FIELD_MANAGER = desired.MANAGED_BY
_SETTINGS = desired.Settings(
    image=os.environ.get("FILLPATH_OPERATOR_IMAGE", desired.Settings().image),
    replicas=int(os.environ.get("FILLPATH_OPERATOR_REPLICAS", "1")),
    env_from_secret=os.environ.get("FILLPATH_OPERATOR_ENV_SECRET", ""),
    oms_address=os.environ.get("FILLPATH_OPERATOR_OMS_ADDRESS", ""),
)
_INTERVAL = float(os.environ.get("FILLPATH_OPERATOR_INTERVAL", "30"))
_SOR_ADDRESS = os.environ.get("FILLPATH_OPERATOR_SOR_ADDRESS", "")
_SOR_TIMEOUT = 2.0
_CIRCUITS = {
    routing_pb2.CIRCUIT_STATE_CLOSED: "closed",
    routing_pb2.CIRCUIT_STATE_OPEN: "open",
    routing_pb2.CIRCUIT_STATE_HALF_OPEN: "half-open",
}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Progress in annotations: a structural status schema would prune kopf's own status keys.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(domain: Domain, namespace: str) -> list[dict[str, Any]]:
    api = client.CustomObjectsApi()
    found = _call(api.list_namespaced_custom_object, GROUP, VERSION, namespace, domain.plural)
    return [r for r in found["items"] if not r["metadata"].get("deletionTimestamp")]


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """An API call; failures that may pass become kopf.TemporaryError (retried with back-off)."""
    try:
        return method(*args, **kwargs)
    except ApiException as err:
        if err.status in (404,):
            raise
        retry = err.status is None or err.status >= 500 or err.status in (409, 429)
        if retry:
            raise kopf.TemporaryError(f"{err.status} {err.reason}", delay=5) from err
        raise kopf.PermanentError(f"{err.status} {err.reason}: {err.body}") from err


def _apply(obj: Mapping[str, Any]) -> None:
    """Server-side apply of one child: idempotent, and only our fields are ours."""
    meta = obj["metadata"]
    methods = {
        "ConfigMap": client.CoreV1Api().patch_namespaced_config_map,
        "Service": client.CoreV1Api().patch_namespaced_service,
        "Deployment": client.AppsV1Api().patch_namespaced_deployment,
    }
    _call(
        methods[obj["kind"]],
        meta["name"],
        meta["namespace"],
        obj,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def _remove_children(domain: Domain, namespace: str) -> None:
    """The last resource of the kind is gone: remove what it owned. The garbage collector would
    too (owner references); doing it here makes the cleanup immediate and independent of it."""
    name = desired.name_of(domain)
    for method, child in (
        (client.AppsV1Api().delete_namespaced_deployment, name),
        (client.CoreV1Api().delete_namespaced_service, name),
        (client.CoreV1Api().delete_namespaced_config_map, f"{name}-config"),
    ):
        try:
            _call(method, child, namespace)
        except ApiException as err:
            if err.status != 404:
                raise


def reconcile(domain: Domain, namespace: str) -> list[dict[str, Any]]:
    """Makes the namespace hold what the kind's resources need; the resources it used."""
    resources = _list(domain, namespace)
    read = {kind: _list(DOMAINS[kind], namespace) for kind in domain.reads}
    wanted = desired.children(domain, namespace, resources, _SETTINGS, read)
    if not wanted:
        _remove_children(domain, namespace)
    for child in wanted:
        _apply(child)
    for reader in DOMAINS.values():  # the services that read this kind get its change too
        if domain.kind in reader.reads:
            reconcile(reader, namespace)
    return resources


def _router_report(namespace: str, venue: str) -> tuple[dict[str, Any] | None, Connected]:
    """What the router says of `venue`: its quality figures (None when it says nothing) and
    the Connected condition."""
    sor = DOMAINS["Venue"]
    address = _SOR_ADDRESS or f"{desired.name_of(sor)}.{namespace}.svc:{sor.port}"
    try:
        with grpc.insecure_channel(address) as channel:
            response = RoutingServiceStub(channel).GetVenueQuality(
                routing_pb2.GetVenueQualityRequest(venues=[venue]), timeout=_SOR_TIMEOUT
            )
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            why = f"the smart order router at {address} has not loaded this venue yet"
            return None, Connected(None, "NotLoaded", why)
        why = f"the smart order router at {address} does not answer ({code.name})"
        return None, Connected(None, "RouterUnreachable", why)
    figures = [
        {
            "score": q.score,
            "liquidity": q.liquidity,
            "latency_micros": q.latency_micros,
            "cost_bps": q.cost_bps if q.HasField("cost_bps") else None,
            "fill_rate": q.fill_rate if q.HasField("fill_rate") else None,
            "markout_bps": q.markout_bps,
            "available": q.available,
            "circuit": _CIRCUITS.get(q.circuit, "unknown"),
        }
        for q in response.venues
    ]
    return desired.venue_quality(figures, _now())


def _status(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    ready: bool,
    reason: str,
    message: str,
    connected: Connected | None = None,
) -> None:
    """Writes observedGeneration and the conditions: Ready, and Connected when given."""
    previous = body.get("status", {}).get("conditions", [])
    generation = int(body["metadata"].get("generation", 1))
    now = _now()
    conditions = [
        desired.condition(previous, "Ready", ready, reason, message, generation=generation, now=now)
    ]
    if connected is not None:
        conditions.append(
            desired.condition(
                previous, "Connected", connected.status, connected.reason, connected.message,
                generation=generation, now=now,
            )
        )  # fmt: skip
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = conditions


def _on_change(domain: Domain) -> Any:
    def handler(body: kopf.Body, patch: kopf.Patch, namespace: str, **_: Any) -> None:
        resources = reconcile(domain, namespace)
        name = desired.name_of(domain)
        connected = None
        if domain.kind == "Venue":
            quality, connected = _router_report(namespace, body["metadata"]["name"])
            if quality is not None:
                patch.status["quality"] = quality
        if domain.kind == "AlgoProfile":
            patch.status["summary"] = desired.algo_summary(body.get("spec", {}))
        if domain.kind == "ExecutionStrategy":
            patch.status["rules"] = len(body.get("spec", {}).get("rules", []))
            profiles = {
                p["metadata"]["name"]: p["spec"]["algorithm"]
                for p in _list(DOMAINS["AlgoProfile"], namespace)
            }
            problems = desired.strategy_problems(body, profiles)
            if problems:
                _status(body, patch, False, "ProfilesMissing", "; ".join(problems))
                return
        _status(
            body, patch, True, "Rendered",
            f"in ConfigMap {name}-config with {len(resources)} {domain.plural}; served by {name}",
            connected,
        )  # fmt: skip

    return handler


def _on_delete(domain: Domain) -> Any:
    def handler(namespace: str, **_: Any) -> None:
        reconcile(domain, namespace)

    return handler


for _domain in DOMAINS.values():
    _change = _on_change(_domain)
    kopf.on.resume(GROUP, VERSION, _domain.plural, id="reconcile")(_change)
    kopf.on.create(GROUP, VERSION, _domain.plural, id="reconcile")(_change)
    kopf.on.update(GROUP, VERSION, _domain.plural, id="reconcile", field="spec")(_change)
    kopf.timer(GROUP, VERSION, _domain.plural, id="refresh", interval=_INTERVAL, idle=_INTERVAL)(
        _change
    )
    kopf.on.delete(GROUP, VERSION, _domain.plural, id="cleanup")(_on_delete(_domain))
