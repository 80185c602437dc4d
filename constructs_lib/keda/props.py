"""Props of :class:`KedaSqsScaler` and of each runtime it scales, and the error raised when
a runtime's scaling contradicts its task timeout or its GPU pool."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from constructs_lib._cdktf import (
    TerraformResource,
)
from constructs_lib.tags import Tags, check_tags, normalize_tags
from task_contract import LONG_POLL_SECONDS

KEDA_CHART_REPOSITORY = "https://kedacore.github.io/charts"
KEDA_CHART = "keda"
KEDA_OPERATOR_SERVICE_ACCOUNT = "keda-operator"
SCALER_CHART = "keda-sqs-scaler"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CHART_VERSION = re.compile(r"^2\.20\.\d+$")


class ScalingConsistencyError(ValueError):
    """A runtime's scaling settings contradict its task timeout or its GPU pool."""

    def __init__(self, runtime: str, problems: list[str]) -> None:
        self.runtime = runtime
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"runtime {runtime!r}: {len(problems)} scaling problem(s):\n{lines}")


@dataclass(frozen=True, kw_only=True)
class KedaSqsScalerProps:
    """KEDA's release and defaults for every runtime it scales.

    Attributes:
        name: Prefix of every physical name.
        chart_version: KEDA chart version, pinned (2.20.x).
        namespace: Namespace of the KEDA release.
        polling_interval_seconds: Seconds between two reads of each runtime queue.
        fallback_failure_threshold: Failed queue reads before a ScaledObject falls back.
        helm_timeout_seconds: How long the KEDA release may take to become ready.
        values: Extra values for the upstream chart, merged last over
            ``helm-values/keda.yaml`` and the generated ones.
        tags: Merged into every taggable resource the construct creates (a mapping or
            pairs).
    """

    name: str = "sdaas"
    chart_version: str = "2.20.2"
    namespace: str = "keda"
    polling_interval_seconds: int = 5
    fallback_failure_threshold: int = 3
    helm_timeout_seconds: int = 600
    values: Mapping[str, Any] = field(default_factory=dict)
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        if not _CHART_VERSION.match(self.chart_version):
            problems.append(
                f"chart_version must be an exact 2.20.x release like 2.20.2 "
                f"(got {self.chart_version!r})"
            )
        if not _DNS_LABEL.match(self.namespace):
            problems.append(f"namespace must be a DNS label (got {self.namespace!r})")
        if not 1 <= self.polling_interval_seconds <= 300:
            problems.append(
                f"polling_interval_seconds must be 1..300 (got {self.polling_interval_seconds})"
            )
        if self.fallback_failure_threshold < 1:
            problems.append(
                f"fallback_failure_threshold must be >= 1 (got {self.fallback_failure_threshold})"
            )
        if self.helm_timeout_seconds < 60:
            problems.append(
                f"helm_timeout_seconds must be >= 60 (got {self.helm_timeout_seconds})"
            )
        if problems:
            raise ValueError("KedaSqsScalerProps: " + "; ".join(problems))
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


@dataclass(frozen=True, kw_only=True)
class RuntimeScaling:
    """How one runtime scales on its queue.

    The target number of messages per replica (KEDA ``queueLength``) follows from the wait
    a task may have before a replica starts it: ``floor(target_wait_seconds /
    seconds_per_image)``, at least 1; ``messages_per_replica`` overrides it.
    ``cooldown_period_seconds`` defaults to the task timeout plus the queue's long poll.
    """

    max_replicas: int = 4
    seconds_per_image: float = 5.0
    target_wait_seconds: float = 60.0
    messages_per_replica: int | None = None
    activation_queue_length: int = 0
    cooldown_period_seconds: int | None = None
    scale_down_stabilization_seconds: int = 300
    fallback_replicas: int = 1
    polling_interval_seconds: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_replicas < 1:
            problems.append(f"max_replicas must be >= 1 (got {self.max_replicas})")
        if self.seconds_per_image <= 0 or self.target_wait_seconds <= 0:
            problems.append(
                "seconds_per_image and target_wait_seconds must be > 0 (got "
                f"{self.seconds_per_image} and {self.target_wait_seconds})"
            )
        if self.messages_per_replica is not None and self.messages_per_replica < 1:
            problems.append(
                f"messages_per_replica must be >= 1 (got {self.messages_per_replica})"
            )
        if self.activation_queue_length < 0:
            problems.append(
                f"activation_queue_length must be >= 0 (got {self.activation_queue_length})"
            )
        if self.cooldown_period_seconds is not None and self.cooldown_period_seconds < 0:
            problems.append(
                f"cooldown_period_seconds must be >= 0 (got {self.cooldown_period_seconds})"
            )
        if not 0 <= self.scale_down_stabilization_seconds <= 3600:
            problems.append(
                "scale_down_stabilization_seconds must be 0..3600 "
                f"(got {self.scale_down_stabilization_seconds})"
            )
        if not 0 <= self.fallback_replicas <= max(self.max_replicas, 0):
            problems.append(
                f"fallback_replicas must be 0..max_replicas (got {self.fallback_replicas}, "
                f"max_replicas={self.max_replicas})"
            )
        if self.polling_interval_seconds is not None and not (
            1 <= self.polling_interval_seconds <= 300
        ):
            problems.append(
                f"polling_interval_seconds must be 1..300 (got {self.polling_interval_seconds})"
            )
        if problems:
            raise ValueError("RuntimeScaling: " + "; ".join(problems))

    @property
    def target_messages_per_replica(self) -> int:
        """KEDA ``queueLength``: the override, else floor(target wait / seconds per image)."""
        if self.messages_per_replica is not None:
            return self.messages_per_replica
        return max(1, math.floor(self.target_wait_seconds / self.seconds_per_image))

    def cooldown_for(self, task_timeout_seconds: int) -> int:
        """``cooldown_period_seconds``, else the longest task plus the long poll."""
        if self.cooldown_period_seconds is not None:
            return self.cooldown_period_seconds
        return task_timeout_seconds + LONG_POLL_SECONDS


@dataclass(frozen=True, kw_only=True)
class ScaleTarget:
    """The Deployment a scaler drives: its namespace and name, and what must exist first
    (the workload's release, its namespace)."""

    namespace: str
    deployment_name: str
    depends_on: tuple[TerraformResource, ...] = ()


