"""Checks of a configuration that need several keys or the constructs.

:func:`consistency_problems` runs when the file is loaded (:mod:`sdaas.config`), once every
key passed on its own, so that what loads also synthesizes:

1. rules between keys of the file: runtime names are unique, ``karpenter.pools`` names
   runtimes (and only with dedicated pools), zones and the alarm topic are in the region;
2. the props of every construct, built by :mod:`sdaas.props` as synth builds them: the
   props' own checks (a ``ValueError`` listing problems separated by "; ", each starting
   with the field it is about) become problems at the keys those fields come from;
3. the rules between constructs synth would otherwise meet: Karpenter against the
   Kubernetes version and the system nodes; each runtime's scaler against its pool's GPUs
   and its task timeout; its chart values against the pool's drain bound, the queue's
   visibility timeout and the chart's ``values.schema.json``.

Stand-ins take the place of what only exists in a stack (queue URLs, ARNs): the checks
read none of them, and the chart schema accepts them.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonschema

from constructs_lib.assets import chart_dir
from constructs_lib.helm_values import load_values
from constructs_lib.karpenter import (
    GpuPoolRef,
    KarpenterGpuPoolProps,
    compatibility_problems,
    controller_placement_problems,
    planned_pools,
)
from constructs_lib.keda import KedaSqsScalerProps, scaler_values, scaling_problems
from constructs_lib.runtime import (
    ContainerImage,
    RuntimeBindings,
    SdRuntimeProps,
    runtime_chart_values,
    runtime_problems,
)
from sdaas import props as props_lib
from sdaas.config import Config, Path_, Problem

STAND_IN_ACCOUNT = "000000000000"

# "<field>[<key>].<sub>.<sub>" at the start of a props problem, then its separator.
_SUBJECT = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*)(?:\[(?P<key>[^\]]+)\])?"
                      r"(?P<rest>(?:\.[A-Za-z0-9_-]+)*)(?P<sep>:\s*|\s+)")
_JOINED = ("and ", "or ", ", ")


def consistency_problems(config: Config) -> list[Problem]:
    """Every problem of ``config`` that no key shows on its own (see the module doc)."""
    structure = _structure_problems(config)
    if structure:  # the props would repeat these, less clearly
        return structure + _region_problems(config)
    problems = _region_problems(config)
    built = _Built(config, problems)
    problems += _karpenter_problems(config, built.karpenter)
    if built.karpenter is not None and built.keda is not None:
        pools = planned_pools(built.karpenter)
        for index, runtime in enumerate(config.runtimes):
            problems += _runtime_problems(config, index, built.runtimes.get(runtime.name),
                                          built.keda, pools[runtime.name])
    return problems


# --- 1. rules between keys -----------------------------------------------------------------


def _structure_problems(config: Config) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    for index, runtime in enumerate(config.runtimes):
        if runtime.name in seen:
            problems.append(Problem(("runtimes", index, "name"), (
                f'"{runtime.name}" is already the name of runtimes[{seen[runtime.name]}]: '
                "every runtime needs its own name")))
        seen.setdefault(runtime.name, index)
    names = ", ".join(r.name for r in config.runtimes)
    for pool in config.karpenter.pools:
        if pool not in seen:
            close = difflib.get_close_matches(pool, list(seen), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(Problem(("karpenter", "pools", pool), (
                f"names no runtime ({hint}runtimes: {names}): pools are keyed by runtime name")))
        elif config.karpenter.pool_model == "shared":
            problems.append(Problem(("karpenter", "pools", pool), (
                "per-runtime pool settings need pool_model: dedicated (the shared pool takes "
                "karpenter.gpu only): remove them or set karpenter.pool_model: dedicated")))
    return problems


def _region_problems(config: Config) -> list[Problem]:
    problems = []
    region = config.region
    vpc = config.cluster.vpc
    for index, zone in enumerate(vpc.availability_zones if vpc is not None else ()):
        if not re.fullmatch(rf"{re.escape(region)}[a-z]", zone):
            problems.append(Problem(("cluster", "vpc", "availability_zones", index), (
                f'"{zone}" is not a zone of region {region}: list zones of {region} (like '
                f"{region}a) or remove availability_zones to use the first available")))
    topic = config.alarms.topic_arn
    if topic is not None and topic.split(":")[3] != region:
        problems.append(Problem(("alarms", "topic_arn"), (
            f"the topic is in {topic.split(':')[3]} but the stack in {region}: CloudWatch "
            "alarms notify topics of their own region")))
    return problems


# --- 2. the props of every construct --------------------------------------------------------


def _same(section: Path_, *names: str) -> dict[str, Path_]:
    return {name: (*section, name) for name in names}


# Where each props field comes from in the file.
_INGRESS_FIELDS = {
    "name": ("name",), "runtimes": ("runtimes",),
    **_same(("api",), "stage_name", "rate_limit_per_second", "burst_limit", "quota_per_day"),
    "api_log_retention_days": ("api", "log_retention_days"),
    **_same(("queue",), "visibility_timeout_seconds", "max_receive_count",
            "message_retention_seconds", "dlq_message_retention_seconds",
            "oldest_message_alarm_seconds"),
    "output_expire_after_days": ("outputs", "expire_after_days"),
    "task_ttl_days": ("outputs", "task_ttl_days"),
    "force_destroy_outputs": ("outputs", "force_destroy"),
    "lambda_reserved_concurrency": ("lambda", "reserved_concurrency"),
    "lambda_memory_mb": ("lambda", "memory_mb"),
    "log_retention_days": ("lambda", "log_retention_days"),
    "alarm_topic_arn": ("alarms", "topic_arn"),
    "tags": ("tags",),
}
_CLUSTER_FIELDS = {
    "name": ("name",), "tags": ("tags",),
    **_same(("cluster",), "cluster_name", "kubernetes_version", "vpc", "existing_vpc",
            "endpoint_public_access_cidrs", "admin_role_arns", "cluster_creator_admin",
            "log_retention_days", "cloudwatch_observability_version",
            "container_log_retention_days"),
    "system_node_instance_type": ("cluster", "system_node_group", "instance_type"),
    "system_node_desired_size": ("cluster", "system_node_group", "desired_size"),
    "system_node_volume_gib": ("cluster", "system_node_group", "volume_gib"),
    "addon_versions": ("cluster", "addons"),
    "model_bucket_arn": ("model_bucket", "existing_bucket"),
    "model_bucket_kms_key_arn": ("model_bucket", "existing_bucket_kms_key_arn"),
}
_KARPENTER_FIELDS = {
    "name": ("name",), "tags": ("tags",),
    **_same(("karpenter",), "namespace", "chart_version", "pool_model"),
    **_same(("karpenter", "gpu"), "instance_families", "spot", "on_demand_fallback",
            "spot_gpu_limit", "on_demand_gpu_limit", "bottlerocket_alias", "allow_latest_ami",
            "node_volume_gib", "image_cache_snapshot_id", "volume_initialization_rate_mibps",
            "instance_store_raid0", "consolidate_after", "disruption_budgets", "expire_after",
            "termination_grace_period", "shutdown_margin_seconds"),
}
_KEDA_FIELDS = {"name": ("name",), **_same(("keda",), "chart_version",
                                           "polling_interval_seconds",
                                           "fallback_failure_threshold")}
_MODEL_BUCKET_FIELDS = {
    "name": ("name",),
    "existing_bucket_name": ("model_bucket", "existing_bucket"),
    "existing_kms_key_arn": ("model_bucket", "existing_bucket_kms_key_arn"),
    "force_destroy": ("model_bucket", "force_destroy"),
}
_SCALING_FIELDS = ("max_replicas", "seconds_per_image", "target_wait_seconds",
                   "messages_per_replica", "cooldown_period_seconds",
                   "scale_down_stabilization_seconds", "fallback_replicas")
_SD_RUNTIME_FIELDS = ("models", "dynamic_model", "model_prefix", "image", "agent_image",
                      "agent_image_tag", "task_timeout_seconds", "heartbeat_seconds",
                      "termination_grace_period_seconds")


def _runtime_fields(index: int) -> dict[str, Path_]:
    return {"name": ("name",), "runtime": ("runtimes", index, "name"),
            "values": ("runtimes", index, "chart_values"),
            **_same(("runtimes", index), *_SCALING_FIELDS, *_SD_RUNTIME_FIELDS)}


def located(error: ValueError, fields: Mapping[str, Path_], fallback: Path_,
            keyed: Mapping[str, Callable[[str, Path_], Path_]] | None = None) -> list[Problem]:
    """The problems of a props ``ValueError`` at the keys of the file they are about.

    Each problem names its field first (``max_receive_count must be ...``, ``vpc.cidr
    must ...``, ``disruption_budgets[0].nodes ...``); ``keyed`` places the ``field[key]``
    subjects of its fields (a runtime's entry in the Karpenter props). A problem naming no
    known field is placed at ``fallback``, the section it came from.
    """
    text = re.sub(r"^[A-Z][A-Za-z]*: ", "", str(error.args[0] if error.args else error))
    problems = []
    for fragment in text.split("; "):
        match = _SUBJECT.match(fragment)
        if match is None or match["field"] not in {**fields, **(keyed or {})}:
            problems.append(Problem(fallback, fragment))
            continue
        rest = tuple(match["rest"].split(".")[1:])
        if match["key"] is not None and match["field"] in (keyed or {}):
            path = (keyed or {})[match["field"]](match["key"], rest)
        elif match["key"] is not None:
            key = match["key"]
            path = (*fields[match["field"]], int(key) if key.isdigit() else key, *rest)
        else:
            path = (*fields[match["field"]], *rest)
        said = fragment[match.end():]
        # "x and y cannot be combined": the subject belongs to the sentence.
        problems.append(Problem(path, fragment if said.startswith(_JOINED) else said))
    return problems


class _Built:
    """The props of every construct, as synth builds them; what fails to build is recorded
    as problems in ``problems`` (and left ``None``)."""

    def __init__(self, config: Config, problems: list[Problem]) -> None:
        self._problems = problems
        names = {r.name: i for i, r in enumerate(config.runtimes)}

        def pool_key(runtime: str, rest: Path_) -> Path_:
            if rest == ("task_timeout_seconds",) and runtime in names:
                return ("runtimes", names[runtime], *rest)
            return ("karpenter", "pools", runtime, *rest)

        self._build(props_lib.ingress_props, config, _INGRESS_FIELDS, ("runtimes",))
        self._build(props_lib.cluster_props, config, _CLUSTER_FIELDS, ("cluster",))
        self.karpenter: KarpenterGpuPoolProps | None = self._build(
            props_lib.karpenter_props, config, _KARPENTER_FIELDS, ("karpenter", "gpu"),
            keyed={"runtimes": pool_key})
        self.keda: KedaSqsScalerProps | None = self._build(
            props_lib.keda_props, config, _KEDA_FIELDS, ("keda",))
        self._build(props_lib.model_bucket_props, config, _MODEL_BUCKET_FIELDS,
                    ("model_bucket",))
        self._build(props_lib.agent_repository_props, config, {}, ("name",))
        self.runtimes: dict[str, SdRuntimeProps] = {}
        for index, runtime in enumerate(config.runtimes):
            where = ("runtimes", index)
            images = [self._build(ContainerImage.parse, getattr(runtime, key), {},
                                  (*where, key))
                      for key in ("image", "agent_image") if getattr(runtime, key)]
            scaling = self._build(props_lib.scaling, config, _runtime_fields(index), where,
                                  runtime.name)
            if None in images or scaling is None:
                continue  # runtime_props would fail on the same values again
            built = self._build(props_lib.runtime_props, config, _runtime_fields(index), where,
                                runtime.name)
            if built is not None:
                self.runtimes[runtime.name] = built

    def _build(self, make: Callable[..., Any], argument: Any, fields: Mapping[str, Path_],
               fallback: Path_, *more: Any,
               keyed: Mapping[str, Callable[[str, Path_], Path_]] | None = None) -> Any:
        try:
            return make(argument, *more)
        except ValueError as exc:
            self._problems.extend(located(exc, fields, fallback, keyed))
            return None


# --- 3. rules between constructs -------------------------------------------------------------


def _karpenter_problems(config: Config, karpenter: KarpenterGpuPoolProps | None) -> list[Problem]:
    problems = []
    for text in compatibility_problems(config.karpenter.chart_version,
                                       config.cluster.kubernetes_version):
        key = ("cluster", "kubernetes_version") if text.startswith("Kubernetes") else (
            "karpenter", "chart_version")
        problems.append(Problem(key, text))
    if karpenter is not None:
        desired = config.cluster.system_node_group.desired_size
        problems.extend(
            Problem(("cluster", "system_node_group", "desired_size"), text)
            for text in controller_placement_problems(
                load_values("karpenter"), system_nodes=desired,
                nodes_setting="cluster.system_node_group.desired_size"))
    return problems


# A problem of the chart values or the scaler, by how it starts: the runtime key it is
# about, the chart values that decide it (a runtime's chart_values may set them instead of
# the key), and what else could be changed.
_HEARTBEAT_ENV = (("agent", "env", "AGENT_HEARTBEAT_SECONDS"),
                  ("agent", "env", "AGENT_VISIBILITY_TIMEOUT_SECONDS"))
_RULES: tuple[tuple[str, str, tuple[Path_, ...], str], ...] = (
    ("max_replicas", "max_replicas", (("maxReplicaCount",),),
     "lower it, or raise the pool's spot_gpu_limit / on_demand_gpu_limit (karpenter.gpu, or "
     "karpenter.pools.<runtime> for a dedicated pool)"),
    ("cooldown_period_seconds", "cooldown_period_seconds", (("cooldownPeriodSeconds",),), ""),
    ("fallback_replicas", "fallback_replicas", (("fallback", "replicas"),), ""),
    ("the pod grace period", "termination_grace_period_seconds",
     (("terminationGracePeriodSeconds",),),
     "change termination_grace_period_seconds (or task_timeout_seconds), or "
     "karpenter.gpu.termination_grace_period / shutdown_margin_seconds"),
    ("heartbeat_seconds", "heartbeat_seconds", _HEARTBEAT_ENV,
     "lower it, or raise queue.visibility_timeout_seconds"),
    ("agent.env", "chart_values", (("agent", "env"),), ""),
    ("the Pod Identity association names service account", "chart_values",
     (("serviceAccount", "name"),), "leave serviceAccount.name to the stack"),
    ("the agent image tag", "agent_image", (("agent", "image", "tag"),),
     "name a version in the image reference"),
)


def _rule_problem(text: str, index: int, chart_values: Mapping[str, Any]) -> Problem:
    for start, key, chart_keys, hint in _RULES:
        if text.startswith(start):
            for chart_key in chart_keys:
                if _sets(chart_values, chart_key):
                    return Problem(("runtimes", index, "chart_values", *chart_key), text)
            return Problem(("runtimes", index, key), f"{text}: {hint}" if hint else text)
    return Problem(("runtimes", index), text)


def _sets(values: Mapping[str, Any], path: Path_) -> bool:
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _runtime_problems(config: Config, index: int, props: SdRuntimeProps | None,
                      keda: KedaSqsScalerProps, pool: GpuPoolRef) -> list[Problem]:
    if props is None:
        return []
    chart_values = config.runtimes[index].chart_values
    problems = [
        _rule_problem(text, index, chart_values)
        for text in scaling_problems(
            scaler_values(keda, runtime=props.runtime, queue_url=_queue_url(config, props),
                          region=config.region, deployment_name=props.runtime,
                          task_timeout_seconds=props.task_timeout_seconds,
                          scaling=props.scaling, values=props.scaler_values),
            pool=pool, task_timeout_seconds=props.task_timeout_seconds)
    ]
    values = runtime_chart_values(props, _bindings(config, props, pool))
    schema = list(_schema_problems(values, chart_values, ("runtimes", index)))
    if schema:  # the consistency rules read values the schema refuses
        return problems + schema
    visibility = config.queue.visibility_timeout_seconds
    association = {"namespace": props.effective_namespace,
                   "service_account": props.service_account}
    problems += [
        _rule_problem(text, index, chart_values)
        for text in runtime_problems(values, pool=pool,
                                     queue_visibility_timeout_seconds=visibility,
                                     association=association,
                                     release_namespace=props.effective_namespace)
    ]
    return problems


def _queue_url(config: Config, props: SdRuntimeProps) -> str:
    return (f"https://sqs.{config.region}.amazonaws.com/{STAND_IN_ACCOUNT}/"
            f"{config.name}-{props.runtime}")


def _bindings(config: Config, props: SdRuntimeProps, pool: GpuPoolRef) -> RuntimeBindings:
    """Stand-ins for what the runtime's chart values take from the other constructs."""
    account, region, name = STAND_IN_ACCOUNT, config.region, config.name
    spec = config.runtime(props.runtime)
    return RuntimeBindings(
        runtime_type=spec.type,
        queue_url=_queue_url(config, props),
        visibility_timeout_seconds=config.queue.visibility_timeout_seconds,
        result_topic_arn=f"arn:aws:sns:{region}:{account}:{name}-results",
        output_bucket=f"{name}-outputs-{account}",
        task_table=f"{name}-tasks",
        task_ttl_days=config.outputs.task_ttl_days,
        region=region,
        model_bucket=config.model_bucket.existing_bucket or f"{name}-models-{account}",
        agent_image=props.agent_image or ContainerImage(
            repository=f"{account}.dkr.ecr.{region}.amazonaws.com/{name}-queue-agent",
            tag=props.agent_image_tag),
        pool=pool,
    )


@functools.cache
def _runtime_chart_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        json.loads((chart_dir("sd-runtime") / "values.schema.json").read_text()))


def _schema_problems(values: dict[str, Any], chart_values: Mapping[str, Any],
                     where: Path_) -> Iterator[Problem]:
    """The runtime's final chart values against ``charts/sd-runtime/values.schema.json``,
    placed at the ``chart_values`` key that set the value (or at the runtime)."""
    errors = sorted(_runtime_chart_validator().iter_errors(values),
                    key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(known)):
                close = difflib.get_close_matches(extra, known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                yield Problem((*where, "chart_values", *path, extra), (
                    f"the sd-runtime chart has no such value ({hint}known here: "
                    f"{', '.join(known)})"))
        elif set_by_user := max(e for e in range(len(path) + 1)
                                if _sets(chart_values, path[:e])):
            below = ".".join(map(str, path[set_by_user:]))
            yield Problem((*where, "chart_values", *path[:set_by_user]),
                          f"{below}: {error.message}" if below else error.message)
        else:
            yield Problem(where, (f"the chart values made from this runtime break the "
                                  f"sd-runtime schema at {'.'.join(map(str, path))}: "
                                  f"{error.message}"))
