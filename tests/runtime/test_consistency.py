"""Synth-time consistency checks: each one refuses a contradiction with a clear message,
and every problem is reported at once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from constructs_lib._cdktf import App, TerraformStack
from constructs_lib.ingress import RuntimeQueueRef
from constructs_lib.karpenter import GpuPoolRef
from constructs_lib.keda import (
    KedaSqsScaler,
    KedaSqsScalerProps,
    RuntimeScaling,
    ScaleTarget,
    ScalingConsistencyError,
    scaling_problems,
)
from constructs_lib.runtime import (
    AgentImageRepository,
    ContainerImage,
    ModelBucketProps,
    RuntimeConsistencyError,
    SdRuntime,
    SdRuntimeProps,
    runtime_problems,
)
from tests.runtime import stack as stack_lib


def build_error(example_config, tmp_path, **kwargs) -> RuntimeConsistencyError:
    with pytest.raises(RuntimeConsistencyError) as info:
        stack_lib.build(example_config, tmp_path, **kwargs)
    return info.value


def test_pod_grace_longer_than_the_pool_termination_grace_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path,
                        runtime_props=stack_lib.with_props(termination_grace_period_seconds=1000))
    assert error.runtime == "sdruntime"
    assert error.problems == [
        "the pod grace period (1000 s) must be <= the terminationGracePeriod of pool "
        "'sdruntime' (900 s): Karpenter would kill a draining pod before its task ends"
    ]


def test_pod_grace_shorter_than_the_task_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path,
                        runtime_props=stack_lib.with_props(termination_grace_period_seconds=300))
    assert error.problems == [
        "the pod grace period (300 s) must be >= task_timeout_seconds + "
        "shutdown_margin_seconds (630 s)"
    ]


def test_cooldown_shorter_than_the_task_and_long_poll_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path, runtime_props=stack_lib.with_props(
        scaling=RuntimeScaling(cooldown_period_seconds=300)))
    assert len(error.problems) == 1
    assert error.problems[0].startswith(
        "cooldown_period_seconds (300) must be >= task_timeout_seconds + the 20 s long poll "
        "(620)")


def test_heartbeat_not_below_the_visibility_timeout_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path,
                        runtime_props=stack_lib.with_props(heartbeat_seconds=300))
    assert error.problems[0] == (
        "heartbeat_seconds (300) must be < the queue's visibility_timeout_seconds (300)")
    assert "at most half the visibility timeout the agent sets (300 s)" in error.problems[1]


def test_heartbeat_above_half_the_visibility_timeout_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path,
                        runtime_props=stack_lib.with_props(heartbeat_seconds=151))
    assert len(error.problems) == 1
    assert error.problems[0].startswith("heartbeat_seconds (151) must be at most half")


def test_a_runtime_without_a_pool_is_refused(example_config, tmp_path):
    def only_first(props):
        return replace(props, runtimes=props.runtimes[:1])

    error = build_error(example_config, tmp_path, pool_props=only_first)
    assert error.runtime == "comfyui"
    assert error.problems[0].startswith("no GPU pool serves runtime 'comfyui'")


def test_more_replicas_than_the_pool_gpu_limit_is_refused(example_config, tmp_path):
    def small(props):
        return replace(props, spot_gpu_limit=2, on_demand_gpu_limit=1)

    error = build_error(example_config, tmp_path, pool_props=small)
    assert error.problems == [
        "max_replicas (4) must be <= the GPU limit of pool 'sdruntime' (3): each replica "
        "needs one GPU, replicas above the limit stay Pending"
    ]


def test_service_account_differing_from_the_association_is_refused(example_config, tmp_path):
    error = build_error(example_config, tmp_path, runtime_props=stack_lib.with_props(
        values={"serviceAccount": {"name": "someone-else"}}))
    assert error.problems == [
        "the Pod Identity association names service account 'sd-runtime' but the chart "
        "creates 'someone-else'"
    ]


def test_every_problem_is_reported_at_once(example_config, tmp_path):
    error = build_error(example_config, tmp_path, runtime_props=stack_lib.with_props(
        termination_grace_period_seconds=1000, heartbeat_seconds=200,
        scaling=RuntimeScaling(max_replicas=20, fallback_replicas=1, cooldown_period_seconds=60),
    ))
    text = str(error)
    assert text.startswith("runtime 'sdruntime': 4 problem(s):")
    for fragment in ("terminationGracePeriod of pool", "heartbeat_seconds (200)",
                     "max_replicas (20)", "cooldown_period_seconds (60)"):
        assert fragment in text


def test_chart_values_overriding_the_budgets_are_checked_too(example_config, tmp_path):
    error = build_error(example_config, tmp_path, runtime_props=stack_lib.with_props(
        values={"maxTaskSeconds": 3600}))
    assert any("must be >= task_timeout_seconds + shutdown_margin_seconds (3630 s)" in p
               for p in error.problems)


# --- the check functions on their own ---------------------------------------------------

POOL = GpuPoolRef(name="p", node_selector={"sd.pool": "p"}, tolerations=(), gpu_limit=4,
                  termination_grace_period_seconds=900)
GOOD_VALUES = {
    "terminationGracePeriodSeconds": 690, "maxTaskSeconds": 600, "shutdownMarginSeconds": 30,
    "agent": {"env": {"AGENT_HEARTBEAT_SECONDS": 30, "AGENT_VISIBILITY_TIMEOUT_SECONDS": 300},
              "image": {"repository": "r", "tag": "1"}},
    "serviceAccount": {"name": "sd-runtime"},
}
ASSOCIATION = {"namespace": "sdaas-x", "service_account": "sd-runtime"}


def test_consistent_values_have_no_problems():
    assert runtime_problems(GOOD_VALUES, pool=POOL, queue_visibility_timeout_seconds=300,
                            association=ASSOCIATION, release_namespace="sdaas-x") == []
    assert scaling_problems({"maxReplicaCount": 4, "cooldownPeriodSeconds": 620,
                             "fallback": {"enabled": True, "replicas": 1}},
                            pool=POOL, task_timeout_seconds=600) == []


def test_namespace_differing_from_the_association_is_a_problem():
    problems = runtime_problems(GOOD_VALUES, pool=POOL, queue_visibility_timeout_seconds=300,
                                association=ASSOCIATION, release_namespace="other")
    assert problems == ["the Pod Identity association names namespace 'sdaas-x' but the "
                        "chart is released in 'other'"]


def test_latest_agent_tag_is_a_problem():
    values = {**GOOD_VALUES, "agent": {**GOOD_VALUES["agent"],
                                       "image": {"repository": "r", "tag": "latest"}}}
    assert runtime_problems(values, pool=POOL, queue_visibility_timeout_seconds=300,
                            association=ASSOCIATION, release_namespace="sdaas-x") == [
        "the agent image tag must name a version, not latest"]


def test_scaling_problems_list_fallback_and_limits():
    problems = scaling_problems({"maxReplicaCount": 5, "cooldownPeriodSeconds": 10,
                                 "minReplicaCount": 6,
                                 "fallback": {"enabled": True, "replicas": 9}},
                                pool=POOL, task_timeout_seconds=600)
    assert len(problems) == 4
    assert problems[2] == "fallback_replicas (9) must be <= max_replicas (5)"


def test_a_runtime_is_scaled_once(runtime_stack):
    scaler = runtime_stack.built.scaler
    ingress = runtime_stack.built.ingress
    with pytest.raises(ValueError, match="'sdruntime' is already scaled"):
        scaler.add_runtime(queue=ingress.queue_for("sdruntime"),
                           target=ScaleTarget(namespace="x", deployment_name="x"),
                           pool=POOL, task_timeout_seconds=600)


class _Cluster:
    """Just what KedaSqsScaler reads from a cluster."""

    region = "us-west-2"

    def __init__(self) -> None:
        self.system_node_selector = {"sd.node-role": "system"}
        self.ready: list = []

    def add_pod_identity(self, scope, id_, *, namespace, service_account, role_arn):
        return None

    def pod_identity_role(self, scope, id_, *, name, description):
        from constructs_lib.iam import POD_IDENTITY_ACTIONS, POD_IDENTITY_PRINCIPAL, Role

        return Role(scope, id_, name=name, assumed_by=POD_IDENTITY_PRINCIPAL,
                    assume_actions=POD_IDENTITY_ACTIONS, description=description)


def test_scaler_checks_before_creating_anything():
    app = App()
    stack = TerraformStack(app, "probe")
    scaler = KedaSqsScaler(stack, "Keda", cluster=_Cluster())
    queue = RuntimeQueueRef(
        runtime="x1", type="comfyui",
        queue_url="https://sqs.us-west-2.amazonaws.com/123456789012/q",
        queue_arn="arn:aws:sqs:us-west-2:123456789012:q", queue_name="q",
        dlq_url="https://sqs.us-west-2.amazonaws.com/123456789012/d",
        dlq_arn="arn:aws:sqs:us-west-2:123456789012:d", visibility_timeout_seconds=300)
    with pytest.raises(ScalingConsistencyError) as info:
        scaler.add_runtime(queue=queue, target=ScaleTarget(namespace="x", deployment_name="x"),
                           pool=replace(POOL, gpu_limit=1), task_timeout_seconds=600,
                           scaling=RuntimeScaling(max_replicas=2))
    assert info.value.runtime == "x1" and "GPU limit of pool 'p' (1)" in info.value.problems[0]
    assert scaler.runtimes == {}
    assert scaler.node.try_find_child("Runtime-x1") is None
    scaled = scaler.add_runtime(queue=queue, target=ScaleTarget(namespace="x", deployment_name="x"),
                                pool=POOL, task_timeout_seconds=600)
    assert scaled.values["queue"]["url"] == queue.queue_url
    assert scaled.values["scaleTargetRef"]["name"] == "x"


def test_unknown_runtime_names_the_configured_ones(runtime_stack):
    built = runtime_stack.built
    with pytest.raises(RuntimeConsistencyError, match="configured: sdruntime, comfyui"):
        SdRuntime(built.stack, "Runtime-ghost", cluster=built.cluster, ingress=built.ingress,
                  pool=built.karpenter, scaler=built.scaler, model_bucket=built.models,
                  agent_repository=built.repository, props=SdRuntimeProps(runtime="ghost"))


# --- props, in the user's words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: KedaSqsScalerProps(chart_version="2.19.0"), "exact 2.20.x release"),
        (lambda: KedaSqsScalerProps(polling_interval_seconds=0), "polling_interval_seconds"),
        (lambda: RuntimeScaling(max_replicas=0), r"max_replicas must be >= 1 \(got 0\)"),
        (lambda: RuntimeScaling(max_replicas=2, fallback_replicas=3), "fallback_replicas"),
        (lambda: RuntimeScaling(seconds_per_image=0), "seconds_per_image"),
        (lambda: SdRuntimeProps(runtime="Bad_Name"), "runtime must be a DNS label"),
        (lambda: SdRuntimeProps(runtime="x1", agent_image_tag="latest"), "not latest"),
        (lambda: SdRuntimeProps(runtime="x1", model_prefix="/models/"), "model_prefix"),
        (lambda: ModelBucketProps(existing_bucket_name="Not_A_Bucket"), "valid S3 bucket"),
        (lambda: ModelBucketProps(existing_kms_key_arn="arn:aws:kms:us-west-2:1:key/x"),
         "needs existing_bucket_name"),
        (lambda: ContainerImage.parse("example.com/agent"), "needs a tag or digest"),
        (lambda: ContainerImage(repository="r", tag="1", digest="sha256:" + "a" * 64),
         "exactly one of tag and digest"),
    ],
)
def test_props_are_validated_in_the_users_words(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(("seconds_per_image", "target_wait", "expected"),
                         [(5, 60, 12), (8, 60, 7), (7, 60, 8), (30, 10, 1)])
def test_messages_per_replica_follows_the_wait_target(seconds_per_image, target_wait, expected):
    scaling = RuntimeScaling(seconds_per_image=seconds_per_image,
                             target_wait_seconds=target_wait)
    assert scaling.target_messages_per_replica == expected


def test_messages_per_replica_override_and_cooldown_default():
    assert RuntimeScaling(messages_per_replica=3).target_messages_per_replica == 3
    assert RuntimeScaling().cooldown_for(600) == 620
    assert RuntimeScaling(cooldown_period_seconds=900).cooldown_for(600) == 900


def test_container_images_parse_tags_and_digests():
    assert ContainerImage.parse("example.com:5000/agent:1.2").chart_values() == {
        "repository": "example.com:5000/agent", "tag": "1.2"}
    digest = "sha256:" + "b" * 64
    assert ContainerImage.parse(f"example.com/agent@{digest}").chart_values() == {
        "repository": "example.com/agent", "digest": digest}


def test_agent_repository_refuses_latest(runtime_stack):
    repository: AgentImageRepository = runtime_stack.built.repository
    with pytest.raises(ValueError, match="immutable"):
        repository.image("latest")


def test_empty_model_prefix_means_the_whole_bucket():
    props = SdRuntimeProps(runtime="x1", model_prefix="")
    assert props.effective_model_prefix == ""
    assert SdRuntimeProps(runtime="x1").effective_model_prefix == "x1"
