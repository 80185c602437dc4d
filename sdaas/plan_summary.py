"""Summarise a Terraform plan for review: ``sd-plan-summary plan.json``.

Reads the JSON form of a saved plan (``terraform show -json plan.out > plan.json``,
``format_version`` 1.x) and prints Markdown for a pull request or a change ticket:

* counts of create / update / replace / delete / read / no-op by resource type, with totals;
* the fixed monthly baseline of what the plan leaves in place (EKS, system nodes, NAT,
  endpoints, keys, alarms: :mod:`sdaas.costs` prices it);
* every replacement with the attributes that force it and its order (create before destroy,
  or destroy before create);
* a warning block when stateful or expensive resources are replaced or deleted;
* data sources read during apply, moves, imports, resources removed from state, output
  changes, and drift that matters to the plan, each in its own section.

Which resources are "stateful or expensive" (a replacement or deletion gets a warning):

* every resource whose type matches a pattern in :data:`DEFAULT_WARN_TYPES` (shell-style
  patterns, extended with ``--warn-type``);
* node IAM roles: an ``aws_iam_role`` that the plan uses as a node role (the
  ``node_role_arn`` of an ``aws_eks_node_group``, the ``principal_arn`` of an
  ``aws_eks_access_entry`` of an EC2 or hybrid node type, the ``role`` of an
  ``aws_iam_instance_profile`` -- found from values and from configuration references), or
  whose address or ``name`` matches ``--node-role-pattern`` (a case-insensitive regular
  expression, default ``node``). Other IAM roles are recreated in seconds and get no warning.

``aws_kms_alias`` is deliberately not in the list: an alias is a pointer, and replacing it
leaves the key and the data encrypted with it untouched. The key itself (``aws_kms_key``) is.

Exit status: 0 when the summary was printed, 2 when the input cannot be read or is not a
plan (the message names the file and the problem). Standard library only (and
:mod:`sdaas.costs`, which is too).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sdaas.costs import PRICES_AS_OF, baseline, resources_from_plan
from sdaas.costs import total as cost_total

PROG = "sd-plan-summary"

#: Resource type pattern -> what is lost when such a resource is replaced or deleted.
DEFAULT_WARN_TYPES: Mapping[str, str] = {
    "aws_api_gateway_api_key": "the key value changes: every client's x-api-key stops working",
    "aws_api_gateway_rest_api": "the API id, and with it the endpoint URL, changes: clients break",
    "aws_cloudwatch_log_group": "the log events stored in it are lost",
    "aws_dynamodb_table": "every item in the table is lost (task status history)",
    "aws_ebs_snapshot": "the snapshot (for example a node image cache) must be rebuilt",
    "aws_ecr_repository": "the images stored in the repository are lost",
    "aws_efs_file_system": "the files stored in it are lost",
    "aws_eks_cluster": "the cluster and every workload on it are recreated; "
    "its endpoint and OIDC issuer change",
    "aws_eks_node_group": "its nodes are drained and recreated; running pods are evicted",
    "aws_kms_key": "data encrypted with the key becomes unreadable once the key is deleted",
    "aws_s3_bucket": "the objects in the bucket are lost (a non-empty bucket also blocks "
    "the deletion unless force_destroy is set)",
    "aws_sns_topic": "the topic ARN changes; subscriptions made outside Terraform are lost",
    "aws_sqs_queue": "queued and in-flight messages are lost; the queue URL changes",
    "aws_vpc": "everything in the VPC (subnets, cluster, nodes, endpoints) is recreated",
}
DEFAULT_NODE_ROLE_PATTERN = "node"
NODE_ROLE_REASON = (
    "nodes using this role lose their identity: they cannot join the cluster "
    "or pull images until they are replaced"
)
#: aws_eks_access_entry types that grant nodes (not people or pods) access.
NODE_ACCESS_ENTRY_TYPES = frozenset({"EC2", "EC2_LINUX", "EC2_WINDOWS", "HYBRID_LINUX"})

CREATE, UPDATE, REPLACE, DELETE, READ, NO_OP, FORGET = (
    "create",
    "update",
    "replace",
    "delete",
    "read",
    "no-op",
    "forget",
)
_KINDS: Mapping[tuple[str, ...], str] = {
    ("create",): CREATE,
    ("update",): UPDATE,
    ("delete", "create"): REPLACE,
    ("create", "delete"): REPLACE,
    ("delete",): DELETE,
    ("read",): READ,
    ("no-op",): NO_OP,
    ("forget",): FORGET,
}
_ORDER = {
    ("create", "delete"): "create before destroy",
    ("delete", "create"): "destroy before create",
}
_REASONS: Mapping[str, str] = {
    "replace_because_tainted": "the object is tainted (an earlier apply failed part way)",
    "replace_because_cannot_update": "the provider cannot update it in place",
    "replace_by_request": "requested with `-replace`",
    "replace_by_triggers": "`lifecycle.replace_triggered_by` fired",
    "delete_because_no_resource_config": "its configuration was removed",
    "delete_because_wrong_repetition": "it switched between a single instance and count/for_each",
    "delete_because_count_index": "its `count` index is out of range",
    "delete_because_each_key": "its `for_each` key is gone",
    "delete_because_no_module": "its module was removed",
    "delete_because_no_move_target": "a `moved` block points at an address no longer configured",
    "read_because_config_unknown": "its configuration depends on values known only after apply",
    "read_because_dependency_pending": "it depends on a resource with pending changes",
    "read_because_check_nested": "it is used in a `check` block",
}
_TABLE_KINDS = (CREATE, UPDATE, REPLACE, DELETE, READ, NO_OP)
_COLUMN_TITLES = {
    CREATE: "Create",
    UPDATE: "Update",
    REPLACE: "Replace",
    DELETE: "Delete",
    READ: "Read",
    NO_OP: "No-op",
    FORGET: "Forget",
    "other": "Other",
}
_MAX_PROBLEMS = 20
_INSTANCE_KEY = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|\d+)\]')
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class PlanError(Exception):
    """The input is not a readable Terraform plan; the message says why."""


@dataclass(frozen=True)
class ResourceChange:
    address: str
    module_address: str
    mode: str
    type: str
    name: str
    actions: tuple[str, ...]
    action_reason: str | None
    replace_paths: tuple[tuple[str | int, ...], ...]
    deposed: str | None
    previous_address: str | None
    importing: bool
    before: Any
    after: Any
    after_unknown: Any = None

    @property
    def kind(self) -> str:
        return _KINDS.get(self.actions, "other")

    @property
    def label(self) -> str:
        return f"{self.address} (deposed object {self.deposed})" if self.deposed else self.address

    @property
    def config_address(self) -> str:
        """The address without instance keys, as configuration references spell it."""
        return _INSTANCE_KEY.sub("", self.address)


@dataclass(frozen=True)
class Plan:
    source: str
    format_version: str
    terraform_version: str | None
    changes: tuple[ResourceChange, ...]
    drift: tuple[ResourceChange, ...]
    output_changes: tuple[tuple[str, tuple[str, ...]], ...]
    relevant_attributes: tuple[tuple[str, tuple[str | int, ...]], ...] | None
    configuration: Mapping[str, Any]
    errored: bool
    complete: bool | None


@dataclass(frozen=True)
class StatefulWarning:
    change: ResourceChange
    why: str


# --------------------------------------------------------------------------- loading


def read_plan(path: str) -> Plan:
    """Read and validate a plan JSON file (``-`` for standard input)."""
    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise PlanError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    return parse_plan(decode(data, source), source)


def decode(data: bytes, source: str) -> Any:
    """Bytes -> JSON value, with the problem named when it is not JSON text."""
    if data.startswith(b"PK\x03\x04"):
        raise PlanError(
            f"{source}: this is a binary plan file, not JSON; convert it first with "
            f"`terraform show -json {source} > plan.json`"
        )
    if not data.strip():
        raise PlanError(f"{source}: the file is empty")
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def parse_plan(doc: Any, source: str) -> Plan:
    """Validate a decoded ``terraform show -json`` plan; every problem found is reported."""
    if not isinstance(doc, dict):
        raise PlanError(
            f"{source}: expected a JSON object from `terraform show -json`, got {_json_type(doc)}"
        )
    version = doc.get("format_version")
    if not isinstance(version, str):
        raise PlanError(f"{source}: no format_version: not the output of `terraform show -json`")
    if version.split(".", 1)[0] != "1":
        raise PlanError(f"{source}: unsupported format_version {version!r}; this tool reads 1.x")
    if "resource_changes" not in doc and "planned_values" not in doc:
        if "values" in doc:
            raise PlanError(
                f"{source}: this is a state, not a plan; run "
                "`terraform plan -out plan.out && terraform show -json plan.out`"
            )
        raise PlanError(f"{source}: not a plan: it has neither resource_changes nor planned_values")

    problems: list[str] = []
    changes = tuple(_resource_changes(doc.get("resource_changes"), "resource_changes", problems))
    drift = tuple(_resource_changes(doc.get("resource_drift"), "resource_drift", problems))
    outputs = _output_changes(doc.get("output_changes"), problems)
    relevant = _relevant_attributes(doc.get("relevant_attributes"), problems)
    configuration = doc.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        problems.append(f"configuration: expected an object, got {_json_type(configuration)}")
        configuration = None
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        lines = [f"{source}: not a valid Terraform plan:"]
        lines += [f"  - {problem}" for problem in shown]
        if more:
            lines.append(f"  - ... and {more} more")
        raise PlanError("\n".join(lines))
    terraform_version = doc.get("terraform_version")
    complete = doc.get("complete")
    return Plan(
        source=source,
        format_version=version,
        terraform_version=terraform_version if isinstance(terraform_version, str) else None,
        changes=changes,
        drift=drift,
        output_changes=outputs,
        relevant_attributes=relevant,
        configuration=configuration or {},
        errored=doc.get("errored") is True,
        complete=complete if isinstance(complete, bool) else None,
    )


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _resource_changes(raw: Any, where: str, problems: list[str]) -> Iterator[ResourceChange]:
    if raw is None:
        return
    if not isinstance(raw, list):
        problems.append(f"{where}: expected an array, got {_json_type(raw)}")
        return
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected an object, got {_json_type(entry)}")
            continue
        address = entry.get("address")
        if isinstance(address, str) and address:
            at = f"{at} ({address})"
        else:
            problems.append(f"{at}: address must be a non-empty string")
        for key in ("type", "mode"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                problems.append(f"{at}: {key} must be a non-empty string")
        mode = entry.get("mode")
        if isinstance(mode, str) and mode not in ("managed", "data"):
            problems.append(f"{at}: mode must be 'managed' or 'data', got {mode!r}")
        change = entry.get("change")
        if not isinstance(change, dict):
            problems.append(f"{at}: change must be an object")
            continue
        actions = change.get("actions")
        if (
            not isinstance(actions, list)
            or not actions
            or not all(isinstance(a, str) for a in actions)
        ):
            problems.append(f"{at}: change.actions must be a non-empty array of strings")
            continue
        paths = change.get("replace_paths", [])
        if not isinstance(paths, list) or not all(
            isinstance(p, list)
            and all(isinstance(s, str | int) and not isinstance(s, bool) for s in p)
            for p in paths
        ):
            problems.append(f"{at}: change.replace_paths must be an array of attribute paths")
            continue
        reason = entry.get("action_reason")
        deposed = entry.get("deposed")
        previous = entry.get("previous_address")
        yield ResourceChange(
            address=address if isinstance(address, str) else "",
            module_address=str(entry.get("module_address") or ""),
            mode=str(mode),
            type=str(entry.get("type")),
            name=str(entry.get("name") or ""),
            actions=tuple(actions),
            action_reason=reason if isinstance(reason, str) else None,
            replace_paths=tuple(tuple(p) for p in paths),
            deposed=deposed if isinstance(deposed, str) and deposed else None,
            previous_address=previous if isinstance(previous, str) and previous else None,
            importing=isinstance(change.get("importing"), dict),
            before=change.get("before"),
            after=change.get("after"),
            after_unknown=change.get("after_unknown"),
        )


def _output_changes(raw: Any, problems: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"output_changes: expected an object, got {_json_type(raw)}")
        return ()
    result = []
    for name, change in sorted(raw.items()):
        actions = change.get("actions") if isinstance(change, dict) else None
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            problems.append(f"output_changes.{name}: actions must be an array of strings")
            continue
        result.append((name, tuple(actions)))
    return tuple(result)


def _relevant_attributes(
    raw: Any, problems: list[str]
) -> tuple[tuple[str, tuple[str | int, ...]], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        problems.append(f"relevant_attributes: expected an array, got {_json_type(raw)}")
        return None
    result = []
    for i, entry in enumerate(raw):
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("resource"), str)
            and isinstance(entry.get("attribute"), list)
        ):
            result.append((entry["resource"], tuple(entry["attribute"])))
        else:
            problems.append(f"relevant_attributes[{i}]: expected {{resource, attribute}}")
    return tuple(result)


# --------------------------------------------------------------------------- analysis


def format_path(path: Sequence[str | int]) -> str:
    """``["vpc_config", 0, "subnet_ids"]`` -> ``vpc_config[0].subnet_ids``."""
    out = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            out.append(f".{step}" if out else step)
        else:
            out.append(f"[{json.dumps(step)}]")
    return "".join(out)


def counts_by_type(changes: Iterable[ResourceChange]) -> dict[tuple[str, str], Counter[str]]:
    """(mode, type) -> Counter of change kinds, for every resource in the plan."""
    table: dict[tuple[str, str], Counter[str]] = {}
    for change in changes:
        table.setdefault((change.mode, change.type), Counter())[change.kind] += 1
    return table


def node_role_usages(plan: Plan) -> dict[str, set[str]]:
    """Node-role evidence: role ARN, role name or role config address -> who uses it so.

    Values come from the planned change (before and after); references come from the
    configuration, so a role used by a node group created in the same plan is found too.
    """
    used: dict[str, set[str]] = {}

    def note(key: Any, user: str) -> None:
        if isinstance(key, str) and key:
            used.setdefault(key, set()).add(user)

    for change in plan.changes:
        for values in (change.before, change.after):
            if not isinstance(values, dict):
                continue
            if change.type == "aws_eks_node_group":
                note(values.get("node_role_arn"), f"node_role_arn of {change.address}")
            elif change.type == "aws_eks_access_entry":
                if values.get("type") in NODE_ACCESS_ENTRY_TYPES:
                    note(values.get("principal_arn"), f"principal_arn of {change.address}")
            elif change.type == "aws_iam_instance_profile":
                note(values.get("role"), f"role of {change.address}")
    for prefix, resource in _config_resources(plan.configuration.get("root_module"), ""):
        rtype = resource.get("type")
        expressions = resource.get("expressions")
        if not isinstance(expressions, dict):
            continue
        attribute = {
            "aws_eks_node_group": "node_role_arn",
            "aws_eks_access_entry": "principal_arn",
            "aws_iam_instance_profile": "role",
        }.get(str(rtype))
        if attribute is None:
            continue
        if rtype == "aws_eks_access_entry":
            entry_type = expressions.get("type")
            constant = entry_type.get("constant_value") if isinstance(entry_type, dict) else None
            if constant not in NODE_ACCESS_ENTRY_TYPES:
                continue
        expression = expressions.get(attribute)
        refs = expression.get("references") if isinstance(expression, dict) else None
        for ref in refs if isinstance(refs, list) else ():
            parts = str(ref).split(".")
            if len(parts) >= 2 and parts[0] == "aws_iam_role":
                user = f"{attribute} of {prefix}{resource.get('address', rtype)}"
                note(f"{prefix}aws_iam_role.{parts[1]}", user)
    return used


def _config_resources(module: Any, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(module, dict):
        return
    for resource in module.get("resources") or ():
        if isinstance(resource, dict):
            yield prefix, resource
    calls = module.get("module_calls")
    if isinstance(calls, dict):
        for name, call in sorted(calls.items()):
            if isinstance(call, dict):
                yield from _config_resources(call.get("module"), f"{prefix}module.{name}.")


def find_warnings(
    plan: Plan,
    warn_types: Mapping[str, str] = DEFAULT_WARN_TYPES,
    node_role_pattern: str = DEFAULT_NODE_ROLE_PATTERN,
) -> list[StatefulWarning]:
    """Replacements and deletions of stateful or expensive resources, sorted by address."""
    node_name = re.compile(node_role_pattern, re.IGNORECASE)
    usages = node_role_usages(plan)
    warnings = []
    for change in plan.changes:
        if change.mode != "managed" or change.kind not in (REPLACE, DELETE):
            continue
        why = next(
            (
                reason
                for pattern, reason in sorted(warn_types.items())
                if fnmatch.fnmatchcase(change.type, pattern)
            ),
            None,
        )
        if why is None and change.type == "aws_iam_role":
            why = _node_role_reason(change, usages, node_name)
        if why is not None:
            warnings.append(StatefulWarning(change, why))
    return sorted(warnings, key=lambda w: (w.change.address, w.change.deposed or ""))


def _node_role_reason(
    change: ResourceChange, usages: Mapping[str, set[str]], node_name: re.Pattern[str]
) -> str | None:
    users: set[str] = set(usages.get(change.config_address, ()))
    names = []
    for values in (change.before, change.after):
        if isinstance(values, dict):
            users |= usages.get(values.get("arn") or "", set())
            users |= usages.get(values.get("name") or "", set())
            if isinstance(values.get("name"), str):
                names.append(values["name"])
    if users:
        return f"node IAM role (used as {', '.join(sorted(users))}): {NODE_ROLE_REASON}"
    if any(node_name.search(text) for text in [change.address, *names]):
        return f"node IAM role (its address or name matches {node_name.pattern!r}): " + (
            NODE_ROLE_REASON
        )
    return None


def significant_drift(plan: Plan) -> tuple[list[ResourceChange], int]:
    """Drift worth reading, and how many drifted objects were left out.

    Like Terraform's own plan output: an object deleted outside Terraform is always shown;
    an object changed outside Terraform is shown when a changed attribute is one the plan
    depends on (``relevant_attributes``). A null that became an empty collection is no change.
    """
    shown, hidden = [], 0
    for change in plan.drift:
        if change.kind == NO_OP:
            continue
        if change.kind != UPDATE:
            shown.append(change)
            continue
        changed = list(_changed_paths(change.before, change.after, ()))
        if changed and _relevant(plan, change, changed):
            shown.append(change)
        else:
            hidden += 1
    return sorted(shown, key=lambda c: c.address), hidden


def _changed_paths(before: Any, after: Any, path: tuple[str | int, ...]) -> Iterator[tuple]:
    if _empty(before) and _empty(after):
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            yield from _changed_paths(before.get(key), after.get(key), (*path, key))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            yield from _changed_paths(b, a, (*path, i))
    elif before != after:
        yield path


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, dict | list) and not value)


def _relevant(plan: Plan, change: ResourceChange, changed: list[tuple]) -> bool:
    if plan.relevant_attributes is None:
        return True
    wanted = [
        attribute
        for resource, attribute in plan.relevant_attributes
        if resource in (change.address, _strip_last_key(change.address))
    ]
    return any(p[: len(a)] == a or a[: len(p)] == p for p in changed for a in wanted)


def _strip_last_key(address: str) -> str:
    match = re.search(r'\[(?:"(?:[^"\\]|\\.)*"|\d+)\]$', address)
    return address[: match.start()] if match else address


# --------------------------------------------------------------------------- rendering


def code(text: str) -> str:
    """A Markdown code span that survives backticks in the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _reason(change: ResourceChange) -> str | None:
    if change.action_reason is None:
        return None
    return _REASONS.get(change.action_reason, code(change.action_reason))


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def render(
    plan: Plan,
    warn_types: Mapping[str, str] = DEFAULT_WARN_TYPES,
    node_role_pattern: str = DEFAULT_NODE_ROLE_PATTERN,
) -> str:
    """The Markdown summary of a plan (deterministic: everything sorted)."""
    changes = sorted(plan.changes, key=lambda c: (c.address, c.deposed or ""))
    managed = [c for c in changes if c.mode == "managed"]
    reads = [c for c in changes if c.kind == READ]
    replaces = [c for c in managed if c.kind == REPLACE]
    deletes = [c for c in managed if c.kind == DELETE]
    others = [c for c in changes if c.kind == "other"]
    forgets = [c for c in managed if c.kind == FORGET]
    moves = [c for c in managed if c.previous_address and c.previous_address != c.address]
    imports = [c for c in managed if c.importing]
    outputs = [(name, actions) for name, actions in plan.output_changes if actions != ("no-op",)]
    drift, drift_hidden = significant_drift(plan)
    total = Counter(c.kind for c in changes)
    changing = [c for c in changes if c.kind not in (NO_OP, READ)]
    warnings = find_warnings(plan, warn_types, node_role_pattern)

    lines = ["## Terraform plan summary", ""]
    if plan.errored:
        lines += [
            "> [!CAUTION]",
            "> Terraform reported errors while planning: this plan is incomplete and "
            "cannot be applied.",
            "",
        ]
    elif plan.complete is False:
        lines += [
            "> [!NOTE]",
            "> The plan is not complete (for example `-target` was used, or some changes "
            "are deferred): another plan is needed after this one is applied.",
            "",
        ]
    nothing = not changing and not moves and not imports and not outputs
    if nothing:
        lines += ["No changes.", ""]
        if total[NO_OP]:
            lines += [f"{_plural(total[NO_OP], 'resource')} unchanged.", ""]
    else:
        add = total[CREATE] + total[REPLACE]
        destroy = total[DELETE] + total[REPLACE]
        lines += [
            f"**Plan:** {total[CREATE]} to create, {total[UPDATE]} to update, "
            f"{total[REPLACE]} to replace, {total[DELETE]} to delete "
            f"(Terraform's count: {add} to add, {total[UPDATE]} to change, "
            f"{destroy} to destroy"
            + (f", {total[FORGET]} to forget" if total[FORGET] else "")
            + "). "
            f"{_plural(total[READ], 'data source')} to read during apply, "
            f"{total[NO_OP]} unchanged.",
            "",
        ]
    if not nothing:
        lines += _type_table(changes, total)
        lines += _baseline_line(plan)
    if warnings:
        lines += [
            "> [!WARNING]",
            f"> **{_plural(len(warnings), 'stateful or expensive resource')} "
            f"will be replaced or deleted.** Check each before applying:",
            ">",
        ]
        for warning in warnings:
            change = warning.change
            what = f"replace ({_ORDER[change.actions]})" if change.kind == REPLACE else "delete"
            lines.append(
                f"> - {code(change.label)}: **{what}**. {warning.why[0].upper()}{warning.why[1:]}."
            )
        lines.append("")
    replacement_lines = []
    for change in replaces:
        if change.replace_paths:
            forced = ", ".join(
                code(format_path(p))
                for p in sorted(change.replace_paths, key=lambda p: [str(s) for s in p])
            )
            why = f"forced by {forced}"
        else:
            why = _reason(change) or "no reason given by Terraform"
        replacement_lines.append(f"- {code(change.label)}: {_ORDER[change.actions]}; {why}")
    lines += _section("Replacements", len(replaces), replacement_lines)
    lines += _section("Deletions", len(deletes), [
        f"- {code(c.label)}" + (f": {why}" if (why := _reason(c)) else "") for c in deletes])
    lines += _section("Data sources read during apply", len(reads), [
        f"- {code(c.address)}" + (f": {why}" if (why := _reason(c)) else "") for c in reads])
    lines += _section("Moved", len(moves), [
        f"- {code(c.previous_address or '')} → {code(c.address)}" for c in moves])
    lines += _section("Imported", len(imports), [f"- {code(c.address)}" for c in imports])
    lines += _section("Removed from state, not destroyed", len(forgets),
                      [f"- {code(c.label)}" for c in forgets])
    lines += _section("Other actions", len(others), [
        f"- {code(c.label)}: {code(json.dumps(list(c.actions)))}" for c in others])
    lines += _section("Output changes", len(outputs), [
        f"- {code(name)}: {_KINDS.get(actions, json.dumps(list(actions)))}"
        for name, actions in outputs])
    drift_lines = [
        f"- {code(c.address)}: "
        + ("deleted" if c.kind == DELETE else c.kind.replace("update", "updated"))
        for c in drift]
    if drift_hidden:
        drift_lines.append(
            f"- _{_plural(drift_hidden, 'other object')} changed outside Terraform in "
            "ways no planned change depends on (not listed)._"
        )
    lines += _section("Changed outside Terraform", len(drift), drift_lines)
    if changing:
        lines += [
            "<details><summary>All changes</summary>",
            "",
        ]
        for change in changing:
            lines.append(f"- {code(change.label)}: {change.kind}")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _baseline_line(plan: Plan) -> list[str]:
    """The fixed monthly cost of what the plan leaves in place (sdaas.costs prices)."""
    kept = [(c.type, c.name, c.after, c.after_unknown) for c in plan.changes
            if c.mode == "managed" and c.kind not in (DELETE, FORGET)]
    lines = baseline(resources_from_plan(kept, plan.configuration))
    if not lines:
        return []
    items = ", ".join(f"{line.item} ${line.monthly_usd:,.2f}" for line in lines
                      if line.monthly_usd is not None)
    unpriced = [line.item for line in lines if line.monthly_usd is None]
    return [
        f"**Fixed monthly baseline after apply:** ${cost_total(lines):,.2f} ({items}; "
        f"us-west-2 list prices {PRICES_AS_OF}, `sdaas/costs.py`)"
        + (f"; no price on record for {', '.join(unpriced)}" if unpriced else "")
        + ". GPU nodes come and go with the queues and are not in it.",
        "",
    ]


def _section(title: str, count: int, rows: list[str]) -> list[str]:
    """A ``### title (count)`` section listing ``rows``; nothing when ``count`` is 0."""
    return [f"### {title} ({count})", "", *rows, ""] if count else []


def _type_table(changes: Sequence[ResourceChange], total: Counter[str]) -> list[str]:
    table = counts_by_type(changes)
    kinds = [*_TABLE_KINDS, *(k for k in (FORGET, "other") if total[k])]
    header = ["Resource type", *(_COLUMN_TITLES[k] for k in kinds)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    rows = {
        (f"data.{rtype}" if mode == "data" else rtype): counts
        for (mode, rtype), counts in table.items()
    }
    for label, counts in sorted(rows.items()):
        lines.append(f"| {code(label)} | " + " | ".join(str(counts[k]) for k in kinds) + " |")
    lines.append("| **Total** | " + " | ".join(f"**{total[k]}**" for k in kinds) + " |")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Summarise a Terraform plan (terraform show -json) as Markdown.",
        epilog="Exit status: 0 summary printed, 2 unreadable or invalid input.",
    )
    parser.add_argument("plan_json", metavar="PLAN_JSON", help="plan JSON file, or - for stdin")
    parser.add_argument(
        "--warn-type",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also warn when resources of this type (shell pattern, e.g. 'aws_rds_*') are "
        "replaced or deleted; repeatable",
    )
    parser.add_argument(
        "--node-role-pattern",
        default=DEFAULT_NODE_ROLE_PATTERN,
        metavar="REGEX",
        help="an aws_iam_role whose address or name matches this (case-insensitive) is a "
        "node role (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        re.compile(args.node_role_pattern)
    except re.error as exc:
        print(
            f"{PROG}: error: --node-role-pattern is not a valid regular expression: {exc}",
            file=sys.stderr,
        )
        return 2
    warn_types = dict(DEFAULT_WARN_TYPES)
    for pattern in args.warn_type:
        warn_types.setdefault(pattern, "listed with --warn-type as stateful or expensive")
    try:
        plan = read_plan(args.plan_json)
    except PlanError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(plan, warn_types, args.node_role_pattern))
    return 0


if __name__ == "__main__":
    sys.exit(main())
