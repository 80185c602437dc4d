"""``KedaSqsScaler``: KEDA, and one queue-driven scaler per runtime.

Creates
    * the KEDA Helm release (upstream chart ``kedacore/keda``, pinned 2.20.x, values from
      ``helm-values/keda.yaml``) in its own namespace, operator, metrics server and webhooks
      on the cluster's system nodes;
    * the operator's IAM role, assumed through EKS Pod Identity by the ``keda-operator``
      service account, allowed nothing but ``sqs:GetQueueAttributes`` on the queues it
      scales (one inline policy per runtime);
    * per runtime (:meth:`KedaSqsScaler.add_runtime`): a release of the local chart
      ``charts/keda-sqs-scaler`` in the runtime's namespace: a ``TriggerAuthentication``
      (pod identity provider ``aws``, the operator's role) and a ``ScaledObject`` on the
      runtime's Deployment (0..``max_replicas``; ``queueLength`` = messages per replica;
      ``scaleOnInFlight: "true"`` inside the trigger metadata; ``activationQueueLength`` 0;
      a cooldown that covers the longest task plus the long poll; an HPA scale-down
      stabilization window; a fallback).

``SdRuntime`` calls :meth:`KedaSqsScaler.add_runtime` for its own runtime; use it directly to
scale another Deployment on a queue.

Example::

    scaler = KedaSqsScaler(stack, "Keda", cluster=cluster, props=KedaSqsScalerProps(name="sdaas"))
    scaler.add_runtime(
        queue=ingress.queue_for("sdruntime"),
        target=ScaleTarget(namespace="sdaas-sdruntime", deployment_name="sdruntime"),
        pool=karpenter.pool_for("sdruntime"),
        task_timeout_seconds=600,
        scaling=RuntimeScaling(max_replicas=4, seconds_per_image=5, target_wait_seconds=60),
    )
"""

from __future__ import annotations

from constructs_lib.keda.construct import KedaSqsScaler, scaler_values
from constructs_lib.keda.props import (
    KEDA_CHART_REPOSITORY,
    KEDA_OPERATOR_SERVICE_ACCOUNT,
    KedaSqsScalerProps,
    RuntimeScaling,
    ScaleTarget,
    ScalingConsistencyError,
)
from constructs_lib.keda.scaled import ScaledRuntime, scaling_problems

__all__ = [
    "KEDA_CHART_REPOSITORY",
    "KEDA_OPERATOR_SERVICE_ACCOUNT",
    "KedaSqsScaler",
    "KedaSqsScalerProps",
    "RuntimeScaling",
    "ScaleTarget",
    "ScaledRuntime",
    "ScalingConsistencyError",
    "scaler_values",
    "scaling_problems",
]
