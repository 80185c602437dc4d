"""Props of :class:`SdRuntime` and the error it raises when its settings contradict
the constructs it joins."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from constructs_lib.keda import (
    RuntimeScaling,
)
from constructs_lib.models import checkpoint_name_problems
from constructs_lib.runtime.image import TAG_RE, ContainerImage
from constructs_lib.runtime.model_bucket import PREFIX_RE
from constructs_lib.tags import Tags, check_tags, normalize_tags

RUNTIME_CHART = "sd-runtime"
NAMESPACE_CHART = "namespace"
SERVICE_ACCOUNT = "sd-runtime"
# Time a stopping pod needs beyond its last task: the agent's last long poll, finishing
# (uploads, status, result) and the runtime's own stop.
FINISH_SECONDS = 60

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class RuntimeConsistencyError(ValueError):
    """The runtime's settings contradict its pool, its queue, its scaler or its chart."""

    def __init__(self, runtime: str, problems: list[str]) -> None:
        self.runtime = runtime
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"runtime {runtime!r}: {len(problems)} problem(s):\n{lines}")

@dataclass(frozen=True, kw_only=True)
class SdRuntimeProps:
    """One runtime. ``runtime`` names it in ``ServerlessIngress`` (its type comes from
    there).

    Attributes:
        runtime: The runtime's name, as in ``ServerlessIngress`` (its queue, its type).
        name: Prefix of every physical name.
        namespace: Kubernetes namespace; ``None``: ``<name>-<runtime>``.
        service_account: Service account of the pods (the Pod Identity subject).
        models: Checkpoint file names it serves; an sdwebui runtime loads the first.
        dynamic_model: A request may pick its checkpoint (sdwebui).
        model_prefix: Its prefix in the model bucket; ``None``: the runtime name; ``""``:
            the whole bucket.
        image: Runtime container image; ``None``: the chart's image for the type.
        agent_image: Queue agent image; ``None``: the agent repository's image with
            ``agent_image_tag``.
        agent_image_tag: Tag of the agent image in the agent repository (never latest).
        task_timeout_seconds: Longest a task may run.
        heartbeat_seconds: Interval of the agent's visibility extensions (at most half the
            queue's visibility timeout).
        shutdown_margin_seconds: Time a stopping pod keeps beyond its last task.
        termination_grace_period_seconds: Pod grace period; ``None``: the task timeout plus
            the shutdown margin plus 60 s (last long poll, finishing, the runtime's stop).
        scaling: How KEDA scales it on its queue (:class:`RuntimeScaling`).
        scaler_values: Extra keda-sqs-scaler chart values, merged last.
        values: Extra sd-runtime chart values, merged last (the chart's README).
        helm_timeout_seconds: Timeout of its Helm release.
        tags: Merged into every taggable resource the construct creates (a mapping or
            pairs).
    """

    runtime: str
    name: str = "sdaas"
    namespace: str | None = None
    service_account: str = SERVICE_ACCOUNT
    models: tuple[str, ...] = ()
    dynamic_model: bool = False
    model_prefix: str | None = None  # default: the runtime name; "": the whole bucket
    image: ContainerImage | None = None
    agent_image: ContainerImage | None = None
    agent_image_tag: str = "0.1.0"
    task_timeout_seconds: int = 600
    heartbeat_seconds: int = 30
    shutdown_margin_seconds: int = 30
    termination_grace_period_seconds: int | None = None
    scaling: RuntimeScaling = field(default_factory=RuntimeScaling)
    scaler_values: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    helm_timeout_seconds: int = 600
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        if not DNS_LABEL_RE.match(self.runtime) or len(self.runtime) > 40:
            problems.append(f"runtime must be a DNS label of <= 40 chars (got {self.runtime!r})")
        if self.namespace is not None and not DNS_LABEL_RE.match(self.namespace):
            problems.append(f"namespace must be a DNS label (got {self.namespace!r})")
        if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", self.service_account):
            problems.append(
                f"service_account must be a DNS subdomain (got {self.service_account!r})"
            )
        for model in self.models:
            problems.extend(f"models: {p}" for p in checkpoint_name_problems(model))
        if self.model_prefix and not PREFIX_RE.match(self.model_prefix):
            problems.append(
                f"model_prefix must not start or end with '/' (got {self.model_prefix!r}): "
                'use "" for the whole bucket'
            )
        if not TAG_RE.match(self.agent_image_tag) or self.agent_image_tag == "latest":
            problems.append(
                f"agent_image_tag must name a version, not latest (got {self.agent_image_tag!r})"
            )
        if self.task_timeout_seconds < 1:
            problems.append(
                f"task_timeout_seconds must be >= 1 (got {self.task_timeout_seconds})"
            )
        if self.heartbeat_seconds < 1:
            problems.append(f"heartbeat_seconds must be >= 1 (got {self.heartbeat_seconds})")
        if self.shutdown_margin_seconds < 5:
            problems.append(
                f"shutdown_margin_seconds must be >= 5 (got {self.shutdown_margin_seconds})"
            )
        if problems:
            raise ValueError("SdRuntimeProps: " + "; ".join(problems))
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "scaler_values", MappingProxyType(dict(self.scaler_values)))

    @property
    def effective_namespace(self) -> str:
        return self.namespace or f"{self.name}-{self.runtime}"

    @property
    def effective_model_prefix(self) -> str:
        """The runtime's key prefix in the model bucket ("" : the whole bucket)."""
        return self.runtime if self.model_prefix is None else self.model_prefix

    @property
    def effective_grace_seconds(self) -> int:
        if self.termination_grace_period_seconds is not None:
            return self.termination_grace_period_seconds
        return self.task_timeout_seconds + self.shutdown_margin_seconds + FINISH_SECONDS

