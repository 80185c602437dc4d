"""``SdRuntime``: one Stable Diffusion runtime on the cluster, and what runtimes share.

``SdRuntime`` creates, for one configured runtime (sdwebui or comfyui):
    * its namespace (Pod Security ``baseline`` enforced, ``restricted`` warned);
    * an IAM role for its pods, assumed through EKS Pod Identity by its service account,
      made only of grants: the ``ServerlessIngress`` ones (consume its own queue, write
      outputs, update task status, publish results, read claim-checked bodies, with the
      KMS use each needs) and read access to its prefix of the model bucket;
    * the Pod Identity association of that role with the namespace and service account;
    * a release of the local chart ``charts/sd-runtime``: Deployment (runtime + queue
      agent), service account, static Mountpoint S3 volume and claim, PodDisruptionBudget;
      values from ``helm-values/sd-runtime.yaml`` deep-merged with generated ones;
    * its scaler, through ``KedaSqsScaler.add_runtime`` (a keda-sqs-scaler release that
      targets the Deployment by name).

Before creating anything it checks, and reports together: the runtime has a GPU pool; the
pod grace period fits the pool's ``terminationGracePeriod`` and covers the longest task;
the agent's heartbeat is shorter than the queue's visibility timeout (at most half); the
namespace and service account of the Pod Identity association are the chart's; the
scaler's cooldown covers the task timeout and its replicas fit the pool's GPU limit.

Shared by every runtime, created once per stack:
    * ``ModelBucket``: the models (an existing bucket named in the configuration, or a
      bucket the stack creates: SSE-KMS, versioned, public access blocked, TLS only);
    * ``AgentImageRepository``: the ECR repository of the queue agent image (scan on push,
      immutable tags).

Example::

    models = ModelBucket(stack, "ModelBucket", props=ModelBucketProps(name="sdaas"))
    repository = AgentImageRepository(stack, "AgentRepository",
                                      props=AgentImageRepositoryProps(name="sdaas"))
    SdRuntime(stack, "Runtime-sdruntime", cluster=cluster, ingress=ingress, pool=karpenter,
              scaler=scaler, model_bucket=models, agent_repository=repository,
              props=SdRuntimeProps(runtime="sdruntime", models=("sd_xl_turbo_1.0.safetensors",)))
"""

from __future__ import annotations

from constructs_lib.runtime.construct import (
    RuntimeBindings,
    SdRuntime,
    runtime_chart_values,
    runtime_problems,
)
from constructs_lib.runtime.image import ContainerImage
from constructs_lib.runtime.model_bucket import ModelBucket, ModelBucketProps
from constructs_lib.runtime.props import RuntimeConsistencyError, SdRuntimeProps
from constructs_lib.runtime.repository import AgentImageRepository, AgentImageRepositoryProps

__all__ = [
    "AgentImageRepository",
    "AgentImageRepositoryProps",
    "ContainerImage",
    "ModelBucket",
    "ModelBucketProps",
    "RuntimeBindings",
    "RuntimeConsistencyError",
    "SdRuntime",
    "SdRuntimeProps",
    "runtime_chart_values",
    "runtime_problems",
]
