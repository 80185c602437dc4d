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

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from constructs_lib._cdktf import Construct, TerraformResource
from constructs_lib._providers import aws, helm
from constructs_lib.buckets import BucketLifecycle, secure_bucket
from constructs_lib.helm_values import deep_merge, dump_values, load_values
from constructs_lib.iam import (
    Condition,
    Statement,
    attach,
)
from constructs_lib.keda import (
    KedaSqsScaler,
    RuntimeScaling,
    ScaledRuntime,
    ScaleTarget,
    ScalingConsistencyError,
    local_chart,
)
from constructs_lib.models import CHECKPOINT_DIRS
from task_contract import LONG_POLL_SECONDS

if TYPE_CHECKING:
    from constructs_lib.cluster import GpuEksCluster
    from constructs_lib.ingress import ServerlessIngress
    from constructs_lib.karpenter import GpuPoolRef, KarpenterGpuPool

RUNTIME_CHART = "sd-runtime"
NAMESPACE_CHART = "namespace"
SERVICE_ACCOUNT = "sd-runtime"
# Time a stopping pod needs beyond its last task: the agent's last long poll, finishing
# (uploads, status, result) and the runtime's own stop.
FINISH_SECONDS = 60

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class RuntimeConsistencyError(ValueError):
    """The runtime's settings contradict its pool, its queue, its scaler or its chart."""

    def __init__(self, runtime: str, problems: list[str]) -> None:
        self.runtime = runtime
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"runtime {runtime!r}: {len(problems)} problem(s):\n{lines}")


# --- images ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContainerImage:
    """A container image by tag or digest (``repository`` may be a Terraform reference)."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if (self.tag is None) == (self.digest is None):
            raise ValueError(
                f"image {self.repository}: give exactly one of tag and digest "
                f"(got tag={self.tag!r}, digest={self.digest!r})"
            )
        if self.tag is not None and not _TAG.match(self.tag):
            raise ValueError(f"image {self.repository}: {self.tag!r} is not a valid tag")
        if self.digest is not None and not _DIGEST.match(self.digest):
            raise ValueError(
                f"image {self.repository}: digest must be sha256:<64 hex> (got {self.digest!r})"
            )

    @classmethod
    def parse(cls, reference: str) -> ContainerImage:
        """``repository:tag`` or ``repository@sha256:...``."""
        if "@" in reference:
            repository, digest = reference.rsplit("@", 1)
            return cls(repository=repository, digest=digest)
        repository, sep, tag = reference.rpartition(":")
        if not sep or "/" in tag:
            raise ValueError(
                f"image {reference!r} needs a tag or digest (repository:tag or "
                "repository@sha256:...)"
            )
        return cls(repository=repository, tag=tag)

    def chart_values(self) -> dict[str, str]:
        out = {"repository": self.repository}
        if self.digest:
            out["digest"] = self.digest
        else:
            out["tag"] = self.tag or ""
        return out

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


# --- model bucket ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ModelBucketProps:
    """The models' bucket: ``existing_bucket_name`` to use one (the reference's way), else
    the stack creates ``<name>-models-<account>-<region>`` (or ``bucket_name``)."""

    name: str = "sdaas"
    existing_bucket_name: str | None = None
    existing_kms_key_arn: str | None = None
    bucket_name: str | None = None
    force_destroy: bool = False
    noncurrent_version_expiration_days: int = 30

    def __post_init__(self) -> None:
        problems = []
        for key in ("existing_bucket_name", "bucket_name"):
            value = getattr(self, key)
            if value is not None and (not _BUCKET.match(value) or ".." in value):
                problems.append(f"{key}: {value!r} is not a valid S3 bucket name")
        if self.existing_bucket_name and self.bucket_name:
            problems.append("set existing_bucket_name or bucket_name, not both")
        if self.existing_kms_key_arn and not self.existing_bucket_name:
            problems.append("existing_kms_key_arn needs existing_bucket_name")
        if self.noncurrent_version_expiration_days < 1:
            problems.append(
                "noncurrent_version_expiration_days must be >= 1 "
                f"(got {self.noncurrent_version_expiration_days})"
            )
        if problems:
            raise ValueError("ModelBucketProps: " + "; ".join(problems))


class ModelBucket(Construct):
    """The bucket runtimes read their models from (existing or created).

    A created bucket: SSE-KMS with the account's S3 key and a bucket key, versioning,
    public access blocked, bucket-owner object ownership, a bucket policy refusing plain
    HTTP, a lifecycle that aborts incomplete multipart uploads after a day and expires
    replaced versions. An existing bucket is only looked up (it must exist at plan time).
    """

    def __init__(self, scope: Construct, id_: str, *,
                 props: ModelBucketProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or ModelBucketProps()
        self._props = props
        self._kms_key_arn = props.existing_kms_key_arn
        if props.existing_bucket_name:
            existing = aws.data_aws_s3_bucket.DataAwsS3Bucket(
                self, "Bucket", bucket=props.existing_bucket_name
            )
            self._name = existing.bucket
            self._arn = existing.arn
            self._created = False
            return
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        bucket = secure_bucket(
            self, bucket_id="Bucket", id_prefix="",
            bucket_name=(props.bucket_name
                         or f"{props.name}-models-{identity.account_id}-{region.name}"),
            force_destroy=props.force_destroy, kms_key_arn=None,
            lifecycle=BucketLifecycle(
                rule_id="abort-uploads-and-expire-replaced-models",
                noncurrent_days=props.noncurrent_version_expiration_days),
        )
        self._name = bucket.bucket
        self._arn = bucket.arn
        self._created = True

    @property
    def bucket_name(self) -> str:
        return self._name

    @property
    def bucket_arn(self) -> str:
        return self._arn

    @property
    def kms_key_arn(self) -> str | None:
        """The customer key of an existing SSE-KMS bucket (None: no KMS grant needed)."""
        return self._kms_key_arn

    @property
    def created(self) -> bool:
        return self._created

    def grant_read(self, grantee: Construct, *, prefix: str, role_name: str) -> None:
        """List and read the objects under ``<prefix>/`` (what Mountpoint needs); an empty
        prefix grants the whole bucket."""
        if prefix and not _PREFIX.match(prefix):
            raise ValueError(f"model prefix must not start or end with '/' (got {prefix!r})")
        keys = f"{prefix}/*" if prefix else "*"
        statements = [
            Statement(sid="ListModels", actions=("s3:ListBucket",),
                      resources=(self.bucket_arn,),
                      conditions=(Condition(test="StringLike", variable="s3:prefix",
                                            values=(keys,)),) if prefix else ()),
            Statement(sid="ReadModels", actions=("s3:GetObject",),
                      resources=(f"{self.bucket_arn}/{keys}",)),
        ]
        if self.kms_key_arn:
            statements.append(Statement(sid="DecryptModels", actions=("kms:Decrypt",),
                                        resources=(self.kms_key_arn,)))
        attach(grantee, "ReadModels", statements, role_name=role_name)


# --- agent image repository --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgentImageRepositoryProps:
    """The queue agent's ECR repository, ``<name>-queue-agent`` (or ``repository_name``)."""

    name: str = "sdaas"
    repository_name: str | None = None
    untagged_expire_days: int = 7
    force_delete: bool = False

    def __post_init__(self) -> None:
        name = self.repository_name or f"{self.name}-queue-agent"
        if not re.match(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
                        name) or len(name) > 256:
            raise ValueError(f"AgentImageRepositoryProps: {name!r} is not a valid ECR name")
        if self.untagged_expire_days < 1:
            raise ValueError(
                "AgentImageRepositoryProps: untagged_expire_days must be >= 1 "
                f"(got {self.untagged_expire_days})"
            )


class AgentImageRepository(Construct):
    """ECR repository for the queue agent image: scan on push, immutable tags, KMS
    encryption (the account's ECR key), untagged images expire. ``make agent-image``
    builds ``agent/Dockerfile`` and pushes it here."""

    def __init__(self, scope: Construct, id_: str, *,
                 props: AgentImageRepositoryProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or AgentImageRepositoryProps()
        ecr = aws.ecr_repository
        self._repository = ecr.EcrRepository(
            self, "Repository",
            name=props.repository_name or f"{props.name}-queue-agent",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=ecr.EcrRepositoryImageScanningConfiguration(
                scan_on_push=True),
            encryption_configuration=[ecr.EcrRepositoryEncryptionConfiguration(
                encryption_type="KMS")],
            force_delete=props.force_delete,
        )
        aws.ecr_lifecycle_policy.EcrLifecyclePolicy(
            self, "Lifecycle",
            repository=self._repository.name,
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": "Expire untagged images (tagged ones are pinned by deployments)",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                              "countUnit": "days", "countNumber": props.untagged_expire_days},
                "action": {"type": "expire"},
            }]}, sort_keys=True, separators=(",", ":")),
        )

    @property
    def repository_url(self) -> str:
        return self._repository.repository_url

    @property
    def repository_arn(self) -> str:
        return self._repository.arn

    @property
    def repository_name(self) -> str:
        return self._repository.name

    def image(self, tag: str) -> ContainerImage:
        if tag == "latest":
            raise ValueError("the repository's tags are immutable: name a version, not latest")
        return ContainerImage(repository=self.repository_url, tag=tag)


# --- the runtime -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SdRuntimeProps:
    """One runtime. ``runtime`` names it in ``ServerlessIngress`` (its type comes from
    there). ``values`` are extra sd-runtime chart values merged last (README of the chart).

    ``termination_grace_period_seconds`` defaults to the task timeout plus the shutdown
    margin plus 60 s (last long poll, finishing the task, the runtime's stop).
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

    def __post_init__(self) -> None:
        problems = []
        if not _DNS_LABEL.match(self.runtime) or len(self.runtime) > 40:
            problems.append(f"runtime must be a DNS label of <= 40 chars (got {self.runtime!r})")
        if self.namespace is not None and not _DNS_LABEL.match(self.namespace):
            problems.append(f"namespace must be a DNS label (got {self.namespace!r})")
        if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", self.service_account):
            problems.append(
                f"service_account must be a DNS subdomain (got {self.service_account!r})"
            )
        if self.model_prefix and not _PREFIX.match(self.model_prefix):
            problems.append(
                f"model_prefix must not start or end with '/' (got {self.model_prefix!r}); "
                'use "" for the whole bucket'
            )
        if not _TAG.match(self.agent_image_tag) or self.agent_image_tag == "latest":
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


class SdRuntime(Construct):
    """One runtime's namespace, identity, chart release and scaler (module docstring)."""

    def __init__(self, scope: Construct, id_: str, *, cluster: GpuEksCluster,
                 ingress: ServerlessIngress, pool: KarpenterGpuPool, scaler: KedaSqsScaler,
                 model_bucket: ModelBucket, agent_repository: AgentImageRepository | None = None,
                 props: SdRuntimeProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        runtime = props.runtime
        namespace = props.effective_namespace
        service_account = props.service_account
        problems: list[str] = []

        try:
            queue = ingress.queue_for(runtime)
        except KeyError as exc:
            raise RuntimeConsistencyError(runtime, [str(exc.args[0])]) from None
        self._queue = queue
        try:
            pool_ref: GpuPoolRef | None = pool.pool_for(runtime)
        except (KeyError, ValueError) as exc:
            pool_ref = None
            problems.append(
                f"no GPU pool serves runtime {runtime!r} ({exc.args[0] if exc.args else exc}): "
                "add one to the Karpenter pools"
            )
        if props.agent_image is None and agent_repository is None:
            problems.append(
                "no agent image: pass agent_repository (the stack's ECR repository) or set "
                "agent_image"
            )

        # --- identity -----------------------------------------------------------------
        self._role = cluster.pod_identity_role(
            self, "Role",
            name=f"{props.name}-{runtime}-runtime",
            description=f"Pods of runtime {runtime}: queue agent and model volume",
        )
        role_name = self._role.role_name
        ingress.grant_consume(self._role, runtime, role_name=role_name)
        ingress.grant_write_outputs(self._role, role_name=role_name)
        ingress.grant_update_status(self._role, role_name=role_name)
        ingress.grant_publish_results(self._role, role_name=role_name)
        ingress.grant_read_claim_checks(self._role, role_name=role_name)
        model_bucket.grant_read(self._role, prefix=props.effective_model_prefix,
                                role_name=role_name)

        identity = Construct(self, "PodIdentity")
        association = {"namespace": namespace, "service_account": service_account}
        cluster.add_pod_identity(identity, "Association", role_arn=self._role.role_arn,
                                 **association)
        identity_resources = [c for c in identity.node.find_all()
                              if isinstance(c, TerraformResource)]

        # --- chart values ---------------------------------------------------------------
        runtime_values: dict[str, Any] = {"name": runtime, "type": queue.type}
        if props.image is not None:
            runtime_values["image"] = props.image.chart_values()
        if queue.type == "sdwebui":
            runtime_values["dynamicModel"] = props.dynamic_model
            if props.models:
                runtime_values["sdModelCheckpoint"] = props.models[0]
        agent_image = props.agent_image or (
            agent_repository.image(props.agent_image_tag) if agent_repository else None
        )
        visibility = ingress.props.visibility_timeout_seconds
        generated: dict[str, Any] = {
            "runtime": runtime_values,
            "agent": {
                "image": agent_image.chart_values() if agent_image else {},
                "env": {
                    "AGENT_VISIBILITY_TIMEOUT_SECONDS": visibility,
                    "AGENT_HEARTBEAT_SECONDS": props.heartbeat_seconds,
                    "AGENT_WAIT_TIME_SECONDS": LONG_POLL_SECONDS,
                },
            },
            "queue": {"url": queue.queue_url},
            "results": {
                "topicArn": ingress.result_topic_arn,
                "bucket": ingress.output_bucket_name,
                "table": ingress.task_table_name,
                "taskTtlDays": ingress.props.task_ttl_days,
            },
            "aws": {"region": cluster.region},
            "models": {"bucket": model_bucket.bucket_name,
                       "prefix": (f"{props.effective_model_prefix}/"
                                  if props.effective_model_prefix else "")},
            "serviceAccount": {"name": service_account},
            "autoscaled": True,
            "maxTaskSeconds": props.task_timeout_seconds,
            "shutdownMarginSeconds": props.shutdown_margin_seconds,
            "terminationGracePeriodSeconds": props.effective_grace_seconds,
        }
        if pool_ref is not None:
            generated["nodePool"] = {
                "name": pool_ref.name,
                "nodeSelector": dict(pool_ref.node_selector),
                "tolerations": [dict(t) for t in pool_ref.tolerations],
            }
        values = deep_merge(deep_merge(load_values(RUNTIME_CHART), generated), props.values)
        self._values = values
        problems.extend(runtime_problems(
            values, pool=pool_ref, queue_visibility_timeout_seconds=visibility,
            association=association, release_namespace=namespace,
        ))
        if pool_ref is None:
            raise RuntimeConsistencyError(runtime, problems)

        # --- Kubernetes ------------------------------------------------------------------
        # The namespace is a release of charts/namespace: every in-cluster object goes
        # through the Helm provider, so the stack needs no Kubernetes provider.
        self._namespace = helm.release.Release(
            self, "Namespace",
            name=f"{runtime}-namespace",
            chart=local_chart(self, NAMESPACE_CHART),
            namespace="default",
            values=[dump_values({
                "name": namespace,
                "labels": {"app.kubernetes.io/part-of": props.name, "sd.runtime": runtime},
                # The runtime images run as root; the agent alone is restricted.
                "podSecurity": {"enforce": "baseline", "warn": "restricted"},
            })],
            max_history=5,
            depends_on=list(cluster.ready),
        )
        self._release = helm.release.Release(
            self, "Release",
            name=runtime,
            chart=local_chart(self, RUNTIME_CHART),
            namespace=namespace,
            values=[dump_values(values)],
            # A rollout of GPU pods (node launch, image pull, model load) outlasts any
            # sensible apply timeout; readiness shows in the queue, not in the apply.
            wait=False,
            timeout=props.helm_timeout_seconds,
            max_history=5,
            # Karpenter outlives the runtime on destroy, so it can remove the GPU nodes.
            depends_on=[*cluster.ready, self._namespace, *identity_resources, pool.release,
                        *([pool_ref.release] if pool_ref.release is not None else [])],
        )

        # --- scaler ------------------------------------------------------------------------
        self._scaled: ScaledRuntime | None = None
        try:
            self._scaled = scaler.add_runtime(
                queue=queue,
                target=ScaleTarget(namespace=namespace, deployment_name=runtime,
                                   depends_on=(self._namespace, self._release)),
                pool=pool_ref,
                task_timeout_seconds=props.task_timeout_seconds,
                scaling=props.scaling,
                values=props.scaler_values,
            )
        except ScalingConsistencyError as exc:
            problems.extend(exc.problems)
        if problems:
            raise RuntimeConsistencyError(runtime, problems)

    # --- attributes ------------------------------------------------------------------------
    @property
    def props(self) -> SdRuntimeProps:
        return self._props

    @property
    def runtime(self) -> str:
        return self._props.runtime

    @property
    def runtime_type(self) -> str:
        return self._queue.type

    @property
    def namespace(self) -> str:
        return self._props.effective_namespace

    @property
    def service_account(self) -> str:
        return self._props.service_account

    @property
    def deployment_name(self) -> str:
        return self._props.runtime

    @property
    def role_arn(self) -> str:
        return self._role.role_arn

    @property
    def role_name(self) -> str:
        return self._role.role_name

    @property
    def release(self) -> TerraformResource:
        return self._release

    @property
    def values(self) -> Mapping[str, Any]:
        """The sd-runtime chart values the release carries (references as tokens)."""
        return MappingProxyType(self._values)

    @property
    def scaled(self) -> ScaledRuntime:
        assert self._scaled is not None
        return self._scaled

    @property
    def model_prefix(self) -> str:
        return self._props.effective_model_prefix

    @property
    def checkpoint_prefix(self) -> str:
        """Key prefix (ending with '/') where this runtime looks for checkpoints."""
        directory = f"{CHECKPOINT_DIRS[self.runtime_type]}/"
        return f"{self.model_prefix}/{directory}" if self.model_prefix else directory


def runtime_problems(values: Mapping[str, Any], *, pool: GpuPoolRef | None,
                     queue_visibility_timeout_seconds: int,
                     association: Mapping[str, str], release_namespace: str) -> list[str]:
    """Every way the final sd-runtime values contradict the pool, the queue or the Pod
    Identity association (the checks that need no scaler)."""
    problems = []
    grace = int(values["terminationGracePeriodSeconds"])
    task = int(values["maxTaskSeconds"])
    margin = int(values["shutdownMarginSeconds"])
    if pool is not None and grace > pool.termination_grace_period_seconds:
        problems.append(
            f"the pod grace period ({grace} s) must be <= the terminationGracePeriod of pool "
            f"{pool.name!r} ({pool.termination_grace_period_seconds} s): Karpenter would kill "
            "a draining pod before its task ends"
        )
    if grace < task + margin:
        problems.append(
            f"the pod grace period ({grace} s) must be >= task_timeout_seconds + "
            f"shutdown_margin_seconds ({task + margin} s)"
        )
    env = (values.get("agent") or {}).get("env") or {}
    heartbeat = float(env.get("AGENT_HEARTBEAT_SECONDS", 30))
    agent_visibility = float(env.get("AGENT_VISIBILITY_TIMEOUT_SECONDS", 120))
    if heartbeat >= queue_visibility_timeout_seconds:
        problems.append(
            f"heartbeat_seconds ({heartbeat:g}) must be < the queue's "
            f"visibility_timeout_seconds ({queue_visibility_timeout_seconds})"
        )
    if heartbeat * 2 > agent_visibility:
        problems.append(
            f"heartbeat_seconds ({heartbeat:g}) must be at most half the visibility timeout "
            f"the agent sets ({agent_visibility:g} s), so one late heartbeat cannot let the "
            "message reappear"
        )
    chart_account = (values.get("serviceAccount") or {}).get("name")
    if chart_account != association["service_account"]:
        problems.append(
            f"the Pod Identity association names service account "
            f"{association['service_account']!r} but the chart creates {chart_account!r}"
        )
    if release_namespace != association["namespace"]:
        problems.append(
            f"the Pod Identity association names namespace {association['namespace']!r} but "
            f"the chart is released in {release_namespace!r}"
        )
    image = (values.get("agent") or {}).get("image") or {}
    if image.get("tag") == "latest":
        problems.append("the agent image tag must name a version, not latest")
    return problems


__all__ = [
    "AgentImageRepository",
    "AgentImageRepositoryProps",
    "ContainerImage",
    "ModelBucket",
    "ModelBucketProps",
    "RuntimeConsistencyError",
    "SdRuntime",
    "SdRuntimeProps",



    "runtime_problems",
]
