"""The kopf handlers: thin. Each event on a fillpath resource re-reconciles its kind in its
namespace — the desired children computed by desired.py, applied with server-side apply (so a
repeat changes nothing) — and writes the resource's status: `observedGeneration` and conditions.

Run with ``kopf run --standalone -m fillpath_operator.handlers`` (the chart does). Settings come
from the environment, read once at start-up: FILLPATH_OPERATOR_IMAGE (the services' image),
FILLPATH_OPERATOR_REPLICAS, FILLPATH_OPERATOR_ENV_SECRET (a Secret of FILLPATH_* connection
settings for the services), FILLPATH_OPERATOR_INTERVAL (seconds between status refreshes).

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

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from fillpath_operator import desired
from fillpath_operator.desired import DOMAINS, GROUP, VERSION, Domain

log = logging.getLogger("fillpath.operator")
FIELD_MANAGER = desired.MANAGED_BY
_SETTINGS = desired.Settings(
    image=os.environ.get("FILLPATH_OPERATOR_IMAGE", desired.Settings().image),
    replicas=int(os.environ.get("FILLPATH_OPERATOR_REPLICAS", "1")),
    env_from_secret=os.environ.get("FILLPATH_OPERATOR_ENV_SECRET", ""),
)
_INTERVAL = float(os.environ.get("FILLPATH_OPERATOR_INTERVAL", "30"))


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
    wanted = desired.children(domain, namespace, resources, _SETTINGS)
    if not wanted:
        _remove_children(domain, namespace)
    for child in wanted:
        _apply(child)
    return resources


def _status(
    body: Mapping[str, Any], patch: kopf.Patch, ready: bool, reason: str, message: str
) -> None:
    previous = body.get("status", {}).get("conditions", [])
    generation = int(body["metadata"].get("generation", 1))
    now = _now()
    conditions = [
        desired.condition(previous, "Ready", ready, reason, message, generation=generation, now=now)
    ]
    if body["kind"] == "Venue":
        conditions.append(
            desired.condition(
                previous, "Connected", None, "AwaitingRouter",
                "the smart order router reports venue connectivity once it runs",
                generation=generation, now=now,
            )
        )  # fmt: skip
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = conditions


def _on_change(domain: Domain) -> Any:
    def handler(body: kopf.Body, patch: kopf.Patch, namespace: str, **_: Any) -> None:
        resources = reconcile(domain, namespace)
        name = desired.name_of(domain)
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
