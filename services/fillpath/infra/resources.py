"""fillpath's custom resources (`Venue`, `AlgoProfile`, `ExecutionStrategy`) read from YAML files.

What a user applies with kubectl is what `fillpath up` and the market lab run with, so a file is
held to the same schema the Kubernetes API server enforces: the CRD's openAPIV3Schema in crds/
(shipped in the package as fillpath/crds), with its defaults applied and its CEL rules that can
be checked without a cluster re-stated in `_RULES`. A bad file is refused with the document and
the field named (``venues.yaml[2] spec.fees.takerFee``) and the value found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fillpath.core.errors import FieldViolation, InvalidArgument

GROUP = "fillpath.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
_CRD_FILES = {"Venue": "venues.fillpath.io.yaml"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    kind: str
    name: str
    spec: dict[str, Any]
    """The spec with the CRD's defaults filled in."""


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of `kind` from its CRD."""
    text = (files("fillpath") / "crds" / _CRD_FILES[kind]).read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def load_resources(path: Path | None, kind: str, *, default: str) -> list[Resource]:
    """The `kind` resources in the YAML file `path` (None: fillpath/defaults/`default`).

    Documents of other kinds are skipped, so one file may hold several kinds.

    Raises:
        InvalidArgument: every problem, named by file, document and field.
    """
    if path is None:
        origin = f"fillpath/defaults/{default}"
        text = (files("fillpath") / "defaults" / default).read_text(encoding="utf-8")
    else:
        origin = str(path)
        text = path.read_text(encoding="utf-8")
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise InvalidArgument.single(origin, "", f"not valid YAML: {err}") from err
    return resources_from_documents(documents, kind, origin=origin)


def resources_from_documents(documents: list[Any], kind: str, *, origin: str) -> list[Resource]:
    schema = crd_schema(kind)
    validator = jsonschema.Draft7Validator(schema)
    violations: list[FieldViolation] = []
    found: list[Resource] = []
    names: set[str] = set()
    for i, document in enumerate(documents):
        where = f"{origin}[{i}]"
        if document is None:
            continue
        if not isinstance(document, Mapping):
            violations.append(FieldViolation(where, document, "must be a mapping"))
            continue
        if document.get("kind") != kind:
            continue
        if document.get("apiVersion") != API_VERSION:
            violations.append(
                FieldViolation(f"{where} apiVersion", document.get("apiVersion"), API_VERSION)
            )
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if not isinstance(name, str) or not name:
            violations.append(FieldViolation(f"{where} metadata.name", name, "required"))
            continue
        if name in names:
            violations.append(FieldViolation(f"{where} metadata.name", name, "appears twice"))
        names.add(name)
        resource = _with_defaults(dict(document), schema)
        errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
        for error in errors:
            field = ".".join(str(p) for p in error.absolute_path)
            violations.append(FieldViolation(f"{where} {field}", error.instance, error.message))
        if not errors:
            for rule in _RULES.get(kind, ()):
                violations.extend(
                    FieldViolation(f"{where} {v.field}", v.value, v.reason)
                    for v in rule(resource["spec"])
                )
            found.append(Resource(kind=kind, name=name, spec=resource["spec"]))
    if violations:
        raise InvalidArgument(violations)
    return found


def _with_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` with the schema's defaults filled in, as the API server would."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        return value
    value = deepcopy(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = deepcopy(sub["default"])
        if key in value:
            value[key] = _with_defaults(value[key], sub)
    return value


def _venue_rules(spec: Mapping[str, Any]) -> list[FieldViolation]:
    """The Venue CRD's CEL rules that hold within one object (not the immutability ones)."""
    connection = spec["connection"]
    if connection["type"] == "fix" and "fix" not in connection:
        return [
            FieldViolation(
                "spec.connection.fix",
                None,
                "connection.fix is required when connection.type is fix",
            )
        ]
    if connection["type"] == "simulated" and "fix" in connection:
        return [
            FieldViolation(
                "spec.connection.fix",
                connection["fix"],
                "connection.fix is only for connection.type fix",
            )
        ]
    return []


_RULES: dict[str, tuple[Callable[[Mapping[str, Any]], list[FieldViolation]], ...]] = {
    "Venue": (_venue_rules,),
}
