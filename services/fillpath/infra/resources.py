"""fillpath's custom resources (`Venue`, `AlgoProfile`, `ExecutionStrategy`) read from YAML files.

What a user applies with kubectl is what `fillpath up` and the market lab run with, so a file is
held to what the Kubernetes API server enforces: the CRD's openAPIV3Schema in crds/ (shipped in
the package as fillpath/crds), its defaults applied, and its CEL rules (`x-kubernetes-
validations`) evaluated with cel-python — the same rules, not a re-statement (transition rules,
which compare with the object's previous version, have nothing to compare with here). A bad
file is refused with the document and the field named (``venues.yaml[2] spec.fees.takerFee``),
and the value found or the rule's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.profiles import AlgoProfile

GROUP = "fillpath.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
_CRD_FILES = {
    "Venue": "venues.fillpath.io.yaml",
    "AlgoProfile": "algoprofiles.fillpath.io.yaml",
    "ExecutionStrategy": "executionstrategies.fillpath.io.yaml",
}


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


def load_algo_profiles(folder: Path | None) -> dict[str, AlgoProfile]:
    """The AlgoProfiles of `folder`'s algoprofiles.yaml (None: the shipped defaults), by name."""
    found = load_resources(
        folder / "algoprofiles.yaml" if folder else None, "AlgoProfile", default="algoprofiles.yaml"
    )
    return {r.name: AlgoProfile.from_spec(r.name, r.spec) for r in found}


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
            broken = _cel_violations(schema["properties"]["spec"], resource["spec"], "spec")
            violations.extend(
                FieldViolation(f"{where} {v.field}", v.value, v.reason) for v in broken
            )
            if not broken:
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


@cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _cel_violations(schema: Mapping[str, Any], value: Any, path: str) -> list[FieldViolation]:
    """Every CEL rule of `schema` and its sub-schemas that `value` breaks, by path."""
    found = []
    for validation in schema.get("x-kubernetes-validations", ()):
        rule = validation["rule"]
        if "oldSelf" in rule:
            continue  # a transition rule: there is no previous version here
        try:
            holds = _program(rule).evaluate({"self": json_to_cel(value)})
        except CELEvalError as err:
            raise InvalidArgument.single(path, rule, f"rule cannot be evaluated: {err}") from err
        if not holds:
            found.append(FieldViolation(path, value, validation.get("message", rule)))
    if isinstance(value, Mapping):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found.extend(_cel_violations(sub, value[key], f"{path}.{key}"))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found.extend(_cel_violations(schema["items"], item, f"{path}[{i}]"))
    return found
