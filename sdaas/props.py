"""The configuration file mapped to construct props: one function per construct.

The constructs know nothing of the file (STYLE 9); this is where its sections become
``*Props``. Checks that need more than one section run when the file is loaded
(:mod:`sdaas.config`), so every function here receives a configuration that is known good.
"""

from __future__ import annotations

from constructs_lib.cluster import (
    DEFAULT_INTERFACE_ENDPOINTS,
    ExistingVpcProps,
    GpuEksClusterProps,
    NewVpcProps,
)
from constructs_lib.ingress import RuntimeSpec, ServerlessIngressProps
from constructs_lib.karpenter import DisruptionBudget, GpuPoolRuntime, KarpenterGpuPoolProps
from constructs_lib.keda import KedaSqsScalerProps, RuntimeScaling
from constructs_lib.runtime import (
    AgentImageRepositoryProps,
    ContainerImage,
    ModelBucketProps,
    SdRuntimeProps,
)
from sdaas.config import Config, NewVpc


def ingress_props(config: Config) -> ServerlessIngressProps:
    """``ServerlessIngressProps`` from the ``api``, ``queue``, ``outputs``, ``lambda`` and
    ``alarms`` sections and the runtimes."""
    return ServerlessIngressProps(
        name=config.name,
        runtimes=tuple(
            RuntimeSpec(name=r.name, type=r.type, models=tuple(r.models),
                        dynamic_model=r.dynamic_model)
            for r in config.runtimes
        ),
        stage_name=config.api.stage_name,
        rate_limit_per_second=config.api.rate_limit_per_second,
        burst_limit=config.api.burst_limit,
        quota_per_day=config.api.quota_per_day,
        visibility_timeout_seconds=config.queue.visibility_timeout_seconds,
        max_receive_count=config.queue.max_receive_count,
        message_retention_seconds=config.queue.message_retention_seconds,
        dlq_message_retention_seconds=config.queue.dlq_message_retention_seconds,
        oldest_message_alarm_seconds=config.queue.oldest_message_alarm_seconds,
        output_expire_after_days=config.outputs.expire_after_days,
        task_ttl_days=config.outputs.task_ttl_days,
        force_destroy_outputs=config.outputs.force_destroy,
        lambda_reserved_concurrency=config.lambdas.reserved_concurrency,
        lambda_memory_mb=config.lambdas.memory_mb,
        log_retention_days=config.lambdas.log_retention_days,
        api_log_retention_days=config.api.log_retention_days,
        alarm_topic_arn=config.alarms.topic_arn,
    )


def cluster_props(config: Config, *, model_bucket_arn: str | None = None,
                      model_bucket_kms_key_arn: str | None = None) -> GpuEksClusterProps:
    """:class:`GpuEksClusterProps` from the ``cluster:`` section of the configuration."""
    cluster = config.cluster
    vpc: NewVpcProps | ExistingVpcProps
    if cluster.existing_vpc is not None:
        vpc = ExistingVpcProps(
            vpc_id=cluster.existing_vpc.vpc_id,
            private_subnet_ids=tuple(cluster.existing_vpc.private_subnet_ids),
            tag_subnets_for_discovery=cluster.existing_vpc.tag_subnets_for_discovery,
        )
    else:
        new = cluster.vpc or NewVpc()
        vpc = NewVpcProps(
            cidr=new.cidr, az_count=new.az_count, nat_gateways=new.nat_gateways,
            interface_endpoints=DEFAULT_INTERFACE_ENDPOINTS if new.interface_endpoints else (),
            flow_logs=new.flow_logs,
            availability_zones=tuple(new.availability_zones),
        )
    versions = dict(cluster.addons)
    return GpuEksClusterProps(
        name=config.name,
        cluster_name=cluster.cluster_name,
        kubernetes_version=cluster.kubernetes_version,
        vpc=vpc,
        endpoint_public_access_cidrs=tuple(cluster.endpoint_public_access_cidrs),
        admin_role_arns=tuple(cluster.admin_role_arns),
        cluster_creator_admin=cluster.cluster_creator_admin,
        log_retention_days=cluster.log_retention_days,
        system_node_instance_type=cluster.system_node_group.instance_type,
        system_node_desired_size=cluster.system_node_group.desired_size,
        system_node_volume_gib=cluster.system_node_group.volume_gib,
        addon_versions=versions,
        cloudwatch_observability_version=cluster.cloudwatch_observability_version or None,
        container_log_retention_days=cluster.container_log_retention_days,
        model_bucket_arn=model_bucket_arn,
        model_bucket_kms_key_arn=model_bucket_kms_key_arn,
        tags=tuple(sorted(config.tags.items())),
    )


def karpenter_props(config: Config) -> KarpenterGpuPoolProps:
    """:class:`KarpenterGpuPoolProps` from the ``karpenter:`` section and the runtimes."""
    karpenter = config.karpenter
    gpu = karpenter.gpu
    runtimes = []
    for runtime in config.runtimes:
        override = karpenter.pools.get(runtime.name)
        runtimes.append(GpuPoolRuntime(
            name=runtime.name,
            task_timeout_seconds=runtime.task_timeout_seconds,
            instance_families=(tuple(override.instance_families)
                               if override and override.instance_families else None),
            spot_gpu_limit=override.spot_gpu_limit if override else None,
            on_demand_gpu_limit=override.on_demand_gpu_limit if override else None,
            image_cache_snapshot_id=override.image_cache_snapshot_id if override else None,
            volume_initialization_rate_mibps=(override.volume_initialization_rate_mibps
                                              if override else None),
        ))
    return KarpenterGpuPoolProps(
        runtimes=tuple(runtimes),
        name=config.name,
        namespace=karpenter.namespace,
        chart_version=karpenter.chart_version,
        pool_model=karpenter.pool_model,
        instance_families=tuple(gpu.instance_families),
        spot=gpu.spot,
        on_demand_fallback=gpu.on_demand_fallback,
        spot_gpu_limit=gpu.spot_gpu_limit,
        on_demand_gpu_limit=gpu.on_demand_gpu_limit,
        bottlerocket_alias=gpu.bottlerocket_alias,
        allow_latest_ami=gpu.allow_latest_ami,
        node_volume_gib=gpu.node_volume_gib,
        image_cache_snapshot_id=gpu.image_cache_snapshot_id,
        volume_initialization_rate_mibps=gpu.volume_initialization_rate_mibps,
        instance_store_raid0=gpu.instance_store_raid0,
        consolidate_after=gpu.consolidate_after,
        disruption_budgets=tuple(
            DisruptionBudget(nodes=b.nodes, schedule=b.schedule, duration=b.duration,
                             reasons=tuple(b.reasons))
            for b in gpu.disruption_budgets),
        expire_after=gpu.expire_after,
        termination_grace_period=gpu.termination_grace_period,
        shutdown_margin_seconds=gpu.shutdown_margin_seconds,
        tags=tuple(sorted(config.tags.items())),
    )


def keda_props(config: Config) -> KedaSqsScalerProps:
    """``KedaSqsScalerProps`` from the ``keda:`` section of the configuration file."""
    return KedaSqsScalerProps(
        name=config.name,
        chart_version=config.keda.chart_version,
        polling_interval_seconds=config.keda.polling_interval_seconds,
        fallback_failure_threshold=config.keda.fallback_failure_threshold,
    )


def scaling(config: Config, runtime: str) -> RuntimeScaling:
    """``RuntimeScaling`` of one entry of ``runtimes:``."""
    spec = config.runtime(runtime)
    return RuntimeScaling(
        max_replicas=spec.max_replicas,
        seconds_per_image=spec.seconds_per_image,
        target_wait_seconds=spec.target_wait_seconds,
        messages_per_replica=spec.messages_per_replica,
        cooldown_period_seconds=spec.cooldown_period_seconds,
        scale_down_stabilization_seconds=spec.scale_down_stabilization_seconds,
        fallback_replicas=spec.fallback_replicas,
    )


def runtime_props(config: Config, runtime: str) -> SdRuntimeProps:
    """``SdRuntimeProps`` of one entry of ``runtimes:``."""
    spec = config.runtime(runtime)
    return SdRuntimeProps(
        runtime=spec.name,
        name=config.name,
        models=tuple(spec.models),
        dynamic_model=spec.dynamic_model,
        model_prefix=spec.model_prefix,
        image=ContainerImage.parse(spec.image) if spec.image else None,
        agent_image=ContainerImage.parse(spec.agent_image) if spec.agent_image else None,
        agent_image_tag=spec.agent_image_tag,
        task_timeout_seconds=spec.task_timeout_seconds,
        heartbeat_seconds=spec.heartbeat_seconds,
        termination_grace_period_seconds=spec.termination_grace_period_seconds,
        scaling=scaling(config, runtime),
        values=spec.chart_values,
    )


def model_bucket_props(config: Config) -> ModelBucketProps:
    """``ModelBucketProps`` from the ``model_bucket:`` section."""
    section = config.model_bucket
    return ModelBucketProps(
        name=config.name,
        existing_bucket_name=section.existing_bucket,
        existing_kms_key_arn=section.existing_bucket_kms_key_arn,
        force_destroy=section.force_destroy,
    )


def agent_repository_props(config: Config) -> AgentImageRepositoryProps:
    return AgentImageRepositoryProps(name=config.name)
