"""Custom resources checked the way the API server checks them, against pinned CRDs.

The CustomResourceDefinitions come from the upstream charts the plan pins (rendered, see
``tests/support/upstream.py``), never from hand-copied files. For a custom resource,
:meth:`CrdSet.problems` does what the API server does on create:

1. applies the schema's ``default`` values (structural defaulting);
2. validates against the ``openAPIV3Schema`` with unknown fields rejected (closed
   objects, as ``kubectl --validate=strict`` does);
3. evaluates every ``x-kubernetes-validations`` CEL rule with a CEL library (cel-python),
   ``self`` bound to the node the rule is declared on.

Rules not evaluated (:data:`NOT_EVALUATED`): transition rules, which refer to ``oldSelf``
and which the API server evaluates only on update. Objects here are checked as created,
so there is no old object. Any other rule that cannot be compiled or evaluated is
reported as a problem, never passed.

CEL functions: cel-python provides the CEL standard library; the two Kubernetes library
functions the pinned CRDs use that it lacks, ``<string>.split(<string>)`` and
``<string>.find(<regex>)`` (https://kubernetes.io/docs/reference/using-api/cel/), are
registered in :data:`KUBERNETES_FUNCTIONS`.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

Manifest = dict[str, Any]


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(separator)])


def _find(text: celtypes.StringType, pattern: celtypes.StringType) -> celtypes.StringType:
    match = re.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


KUBERNETES_FUNCTIONS = {"split": _split, "find": _find}
_ENVIRONMENT = celpy.Environment()


@dataclass(frozen=True, kw_only=True)
class CelRule:
    """One ``x-kubernetes-validations`` entry and where it is declared."""

    path: str  # JSON-path-like location in the object, e.g. ".spec.amiSelectorTerms[]"
    rule: str
    message: str

    @property
    def is_transition_rule(self) -> bool:
        return re.search(r"\boldSelf\b", self.rule) is not None


# The reason each kind of rule is not evaluated; tests/charts/test_validation_tooling.py lists the
# rules of the pinned CRDs that fall under it.
NOT_EVALUATED = {
    "transition rule": "refers to oldSelf: the API server evaluates it only on update, and "
                       "these objects are checked as created",
}


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(rule), functions=KUBERNETES_FUNCTIONS)


def evaluate(rule: str, value: Any) -> bool | str:
    """``True`` when the rule holds for ``self = value``; otherwise the reason (``False``
    or the CEL error) as text."""
    try:
        result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    except (celpy.CELParseError, celpy.CELEvalError) as exc:
        return f"CEL error: {exc.args[0] if exc.args else exc}"
    if isinstance(result, celpy.CELEvalError):
        return f"CEL error: {result.args[0] if result.args else result}"
    if result is True or result == celtypes.BoolType(True):
        return True
    return "false"


def close_schema(schema: Any) -> Any:
    """A copy of ``schema`` where every object schema that lists ``properties`` and lacks
    ``x-kubernetes-preserve-unknown-fields`` rejects unknown fields."""
    if isinstance(schema, list):
        return [close_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: close_schema(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in closed
    ):
        closed["additionalProperties"] = False
    return closed


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """A copy of ``value`` with the schema's ``default`` values filled in where a field is
    missing, recursively (defaults inside inserted defaults too), as the API server does."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: Mapping[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default_in_place(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            known = schema.get("properties") or {}
            for key, item in value.items():
                if key not in known:
                    _default_in_place(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_in_place(schema["items"], item)


def cel_rules(schema: Mapping[str, Any], path: str = "") -> Iterator[CelRule]:
    """Every CEL rule declared in ``schema``, with where it is declared."""
    for entry in schema.get("x-kubernetes-validations") or []:
        yield CelRule(path=path or ".", rule=entry["rule"],
                      message=entry.get("message") or entry.get("messageExpression", ""))
    for key, sub in (schema.get("properties") or {}).items():
        yield from cel_rules(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from cel_rules(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from cel_rules(schema["additionalProperties"], f"{path}{{}}")


def cel_problems(schema: Mapping[str, Any], value: Any, path: str = "") -> list[str]:
    """The CEL rules ``value`` breaks, each as ``<path>: <message>``; transition rules are
    skipped (see :data:`NOT_EVALUATED`)."""
    problems: list[str] = []
    for entry in schema.get("x-kubernetes-validations") or []:
        rule = CelRule(path=path, rule=entry["rule"], message=entry.get("message", ""))
        if rule.is_transition_rule:
            continue
        outcome = evaluate(rule.rule, value)
        if outcome is not True:
            message = rule.message or f"failed rule: {rule.rule}"
            detail = "" if outcome == "false" else f" ({outcome})"
            problems.append(f"{path or '.'}: {message}{detail}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                problems.extend(cel_problems(properties[key], item, f"{path}.{key}"))
            elif isinstance(extra, dict):
                problems.extend(cel_problems(extra, item, f"{path}[{key!r}]"))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems.extend(cel_problems(schema["items"], item, f"{path}[{index}]"))
    return problems


def _json_path(error: jsonschema.ValidationError) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path)


@dataclass(frozen=True)
class CrdSet:
    """The served versions of a set of CRDs: ``(apiVersion, kind) -> openAPIV3Schema``."""

    schemas: Mapping[tuple[str, str], Mapping[str, Any]]

    @classmethod
    def from_manifests(cls, manifests: Iterable[Manifest]) -> CrdSet:
        schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
        for doc in manifests:
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = \
                        version["schema"]["openAPIV3Schema"]
        if not schemas:
            raise ValueError("no CustomResourceDefinition among the manifests")
        return cls(schemas)

    def __contains__(self, key: object) -> bool:
        return key in self.schemas

    def schema(self, api_version: str, kind: str) -> Mapping[str, Any]:
        """The raw openAPIV3Schema (``KeyError`` for a kind these CRDs do not define)."""
        return self.schemas[(api_version, kind)]

    def problems(self, manifest: Manifest, *, cel: bool = True) -> list[str]:
        """Everything the API server would refuse in ``manifest`` on create."""
        schema = self.schema(manifest["apiVersion"], manifest["kind"])
        defaulted = apply_defaults(schema, manifest)
        out = [f"{_json_path(e)}: {e.message}"
               for e in sorted(_validator(self, manifest["apiVersion"], manifest["kind"])
                               .iter_errors(defaulted), key=lambda e: e.json_path)]
        if cel:
            out.extend(cel_problems(schema, defaulted))
        return out

    def __hash__(self) -> int:
        return id(self)


@functools.cache
def _validator(crds: CrdSet, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = close_schema(crds.schema(api_version, kind))
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    return validator_cls(schema)
