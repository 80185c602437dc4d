"""Reference tables generated from the code: configuration keys, construct props, outputs,
what an operator sees where (dashboard, alarms, log groups) and the cost notes.

``make docs`` writes ``docs/reference.md``; a test fails when the committed file differs
from what this module generates, so the tables cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sdaas.config import REPO_ROOT, Config

REFERENCE = REPO_ROOT / "docs" / "reference.md"

# (title, module, props class) of every construct, in the order of ARCHITECTURE §2.
CONSTRUCTS = (
    ("ServerlessIngress", "constructs_lib.ingress", "ServerlessIngressProps"),
    ("GpuEksCluster", "constructs_lib.cluster", "GpuEksClusterProps"),
    ("KarpenterGpuPool", "constructs_lib.karpenter", "KarpenterGpuPoolProps"),
    ("KedaSqsScaler", "constructs_lib.keda", "KedaSqsScalerProps"),
    ("SdRuntime", "constructs_lib.runtime", "SdRuntimeProps"),
)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if annotation is Ellipsis:
        return "..."
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _cell(text: str) -> str:
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text.replace("``", "`"))  # reST roles
    return text.replace("|", "\\|").replace("\n", " ")


def _yaml(value: Any) -> str:
    """``value`` spelled as in a YAML file: ``"5m"``, ``[g6, g6e, g5]``, ``{a: b}``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_default(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_yaml_item(k)}: {_yaml_item(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_item(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return _yaml_item(value)


def _yaml_item(value: Any) -> str:
    """A value inside a flow collection: plain where YAML reads it back as the same text."""
    if isinstance(value, str) and value and yaml.safe_load(value) == value and not any(
            c in value for c in ",[]{}#&*!|>'\"%@`"):
        return value
    if isinstance(value, str | Mapping | list | tuple) or dataclasses.is_dataclass(value):
        return _yaml(value)
    if value is None:
        return "null"
    return json.dumps(value)


def _dataclass_default(value: Any) -> str:
    """A props default as it is written: ``RuntimeScaling()``, ``DisruptionBudget(nodes="10%")``."""
    changed = [f"{f.name}={_yaml(getattr(value, f.name))}" for f in dataclasses.fields(value)
               if f.init and _field_default(f) != getattr(value, f.name)]
    return f"{type(value).__name__}({', '.join(changed)})"


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _default(value: Any) -> str:
    if value is PydanticUndefined or value is dataclasses.MISSING:
        return "(required)"
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "(the keys below)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "`" + _yaml([v.model_dump(exclude_defaults=True) for v in value]) + "`"
    return f"`{_yaml(value)}`"


# The name of a mapping's keys in the reference (``karpenter.pools.<runtime>.…``).
KEY_NAMES = {"pools": "<runtime>"}


def _nested(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """``(key suffix, model)`` of the models a field holds: ``.``, ``[].`` or ``.<key>.``."""
    out = []
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for arg in typing.get_args(annotation) if union else (annotation,):
        origin = typing.get_origin(arg)
        inner = typing.get_args(arg)[-1] if origin in (list, dict) else arg
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            suffix = {list: "[].", dict: ".{key}."}.get(origin, ".")  # type: ignore[call-overload]
            out.append((suffix, inner))
    return out


def _model_rows(model: type[BaseModel], prefix: str, tag: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        default = field.default
        if field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = str(extra["x-default-text"]) if "x-default-text" in extra else _default(default)
        rows.append(f"| `{key}` | {_cell(_type_name(field.annotation))} | "
                    f"{_cell(shown)} | {_cell(tag + (field.description or ''))} |")
        nested = _nested(field.annotation)
        for suffix, sub in nested:
            sub_tag = _variant(sub) if len(nested) > 1 else ""
            path = key + suffix.format(key=KEY_NAMES.get(name, "<key>"))
            rows.extend(_model_rows(sub, path, sub_tag))
    return rows


def _variant(model: type[BaseModel]) -> str:
    """``(backend: s3) `` for a member of a union told apart by a literal field."""
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            values = typing.get_args(field.annotation)
            if len(values) == 1:
                return f"(with {name}: {values[0]}) "
    return ""


def config_reference() -> str:
    lines = [
        "## Configuration file",
        "",
        "Every key of the configuration file (`config.example.yaml`), from",
        "`sdaas/config.py`. Unknown keys are rejected; `none`: unset.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        *_model_rows(Config, ""),
        "",
    ]
    return "\n".join(lines)


def attributes(cls: type) -> dict[str, str]:
    """``name: description`` entries of the ``Attributes:`` block of a class docstring
    (Google style: an entry per line, continuation lines indented deeper)."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = lines.index("Attributes:") + 1
    except ValueError:
        return out
    indent = None
    current = ""
    for line in lines[start:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            break
        if indent is None:
            indent = depth
        entry = re.match(r"^(\w+):\s*(.*)$", line.strip())
        if depth == indent and entry:
            current = entry.group(1)
            out[current] = entry.group(2)
        elif current:
            out[current] += " " + line.strip()
    return out


def props_reference() -> str:
    import importlib  # noqa: PLC0415

    lines = ["## Construct props", "", "Defaults as they are written in Python; `none`: "
             "`None`.", ""]
    for title, module_name, props_name in CONSTRUCTS:
        module = importlib.import_module(module_name)
        props = getattr(module, props_name)
        hints = typing.get_type_hints(props)
        described = attributes(props)
        lines += [
            f"### `{title}` — `{module_name}.{props_name}`",
            "",
            (module.__doc__ or "").strip().splitlines()[0],
            "",
            "| field | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for field in dataclasses.fields(props):
            lines.append(f"| `{field.name}` | {_cell(_type_name(hints[field.name]))} | "
                         f"{_cell(_default(_field_default(field)))} | "
                         f"{_cell(described.get(field.name, ''))} |")
        lines.append("")
    return "\n".join(lines)


def outputs_reference(doc: dict[str, Any]) -> str:
    lines = [
        "## Terraform outputs",
        "",
        "| output | sensitive | meaning |",
        "|---|---|---|",
    ]
    for name, body in sorted(doc.get("output", {}).items()):
        lines.append(f"| `{name}` | {'yes' if body.get('sensitive') else ''} | "
                     f"{_cell(body.get('description', ''))} |")
    lines.append("")
    return "\n".join(lines)


# What each log group of the stack holds, by the end of its name.
LOG_GROUP_CONTENTS = (
    ("/application", "stdout and stderr of every container (runtime, queue agent, Karpenter, "
     "KEDA, CoreDNS), one record per line with its Kubernetes metadata; the agent's JSON "
     "fields are under `log_processed`"),
    ("/emf", "the containers' embedded-metric lines, unchanged: the source of the "
     "`SdAsync/QueueAgent` metrics"),
    ("/performance", "Container Insights performance events: the `ContainerInsights` pod, "
     "node and GPU metrics"),
    ("/dataplane", "kubelet and container runtime logs (from the systemd journal: empty on "
     "AL2023 and Bottlerocket nodes)"),
    ("/host", "dmesg, messages and secure of each node (empty on AL2023 and Bottlerocket)"),
    ("/cluster", "EKS control plane: API server, audit, authenticator, controller manager, "
     "scheduler"),
    ("/lambda/", "the Lambda function's log lines (one JSON line per request or delivery)"),
    ("/apigateway/", "API access logs (one JSON line per request)"),
    ("/vpc-flow-logs/", "VPC flow logs"),
)


def operations_reference(doc: dict[str, Any]) -> str:
    """What an operator sees where: the dashboard, the alarms, the log groups."""
    resources = doc.get("resource", {})
    lines = ["## Observability: what an operator sees where", ""]
    for dashboard in resources.get("aws_cloudwatch_dashboard", {}).values():
        body = json.loads(dashboard["dashboard_body"])
        titles = [w["properties"]["title"] for w in body["widgets"]
                  if "title" in w["properties"]]
        lines += [
            f"**Dashboard** `{dashboard['dashboard_name']}` (output `dashboard_url`), widgets:",
            "; ".join(_cell(t) for t in titles) + ".",
            "",
        ]
    lines += ["| alarm | fires when | metric |", "|---|---|---|"]
    for alarm in sorted(resources.get("aws_cloudwatch_metric_alarm", {}).values(),
                        key=lambda a: a["alarm_name"]):
        lines.append(f"| `{alarm['alarm_name']}` | {_cell(alarm['alarm_description'])} | "
                     f"{alarm['namespace']} {alarm['metric_name']} |")
    lines += ["", "| log group | retention (days) | what is in it |", "|---|---|---|"]
    for group in sorted(resources.get("aws_cloudwatch_log_group", {}).values(),
                        key=lambda g: g["name"]):
        name = group["name"]
        what = next((text for part, text in LOG_GROUP_CONTENTS
                     if name.endswith(part) or (part.endswith("/") and part in name)), "")
        lines.append(f"| `{group['name']}` | {group.get('retention_in_days', '')} | "
                     f"{_cell(what)} |")
    lines.append("")
    return "\n".join(lines)


def reference(doc: dict[str, Any]) -> str:
    """The whole reference page for a synthesized ``cdk.tf.json`` of the example app."""
    from sdaas.config import EXAMPLE_CONFIG, load_config  # noqa: PLC0415
    from sdaas.costs import markdown as cost_notes  # noqa: PLC0415
    from sdaas.costs import resources_from_terraform  # noqa: PLC0415

    return "\n".join([
        "# Reference",
        "",
        "Generated by `make docs` from the code (`sdaas/docs.py`); a test keeps",
        "it current. Do not edit by hand.",
        "",
        config_reference(),
        props_reference(),
        outputs_reference(doc),
        operations_reference(doc),
        cost_notes(load_config(EXAMPLE_CONFIG), resources_from_terraform(doc),
                   title="Cost notes (example configuration)"),
    ])


def main() -> int:
    """``python -m sdaas.docs STACK_DIR``: write docs/reference.md."""
    stack_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if stack_dir is None:
        print("usage: python -m sdaas.docs cdktf.out/stacks/<name>", file=sys.stderr)
        return 2
    doc = json.loads((stack_dir / "cdk.tf.json").read_text())
    REFERENCE.write_text(reference(doc))
    print(f"wrote {REFERENCE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
