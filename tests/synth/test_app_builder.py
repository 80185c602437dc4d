"""The one app builder (sdaas.app): the whole service as main.py writes it, subsets of its
parts, props edits before construction, and the emulated provider."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from sdaas import app as app_lib

OWN_OUTPUTS = {
    app_lib.Part.INGRESS: {"api_endpoint", "api_key_id", "api_key_command", "api_key_value",
                           "output_bucket", "input_topic_arn", "result_topic_arn",
                           "task_table", "queue_urls", "dead_letter_queue_urls",
                           "webhook_secret_arn", "webhook_function",
                           "webhook_dead_letter_queue_url"},
    app_lib.Part.MODEL_BUCKET: {"model_bucket"},
    app_lib.Part.CLUSTER: {"cluster_name"},
    app_lib.Part.KEDA: {"keda_operator_role_arn"},
    app_lib.Part.AGENT_REPOSITORY: {"agent_repository_url"},
    app_lib.Part.RUNTIMES: {"model_locations", "runtime_namespaces"},
}


def in_memory(config: Any, **options: Any) -> tuple[app_lib.Built, dict[str, Any]]:
    """Build one stack in a test app; its constructs and its document (with the construct
    paths that ``Testing.synth`` drops)."""
    from constructs_lib._cdktf import Testing

    built = app_lib.build_stack(Testing.app(), config, **options)
    return built, json.loads(json.dumps(built.stack.to_terraform()))


def construct_roots(doc: dict[str, Any]) -> set[str]:
    """The top-level construct ids that own the resources of ``doc``."""
    return {body["//"]["metadata"]["path"].split("/")[1]
            for block in ("resource", "data") for items in doc.get(block, {}).values()
            for body in items.values()}


def test_the_whole_service_is_what_main_writes(synthesized, example_config, tmp_path):
    built = app_lib.build_app(example_config, tmp_path)
    assert built.synth() == tmp_path / "stacks" / example_config.name
    assert (built.stack_dir / "cdk.tf.json").read_bytes() == (
        synthesized.stack_dir / "cdk.tf.json").read_bytes()
    assert set(built.runtimes) == {r.name for r in example_config.runtimes}
    assert None not in (built.ingress, built.models, built.cluster, built.karpenter,
                        built.scaler, built.repository)


@pytest.mark.parametrize(("parts", "roots"), [
    (app_lib.INGRESS_ONLY, {"Ingress"}),
    (app_lib.CLUSTER_AND_POOLS, {"Cluster", "Karpenter"}),
    ({app_lib.Part.CLUSTER, app_lib.Part.KEDA, app_lib.Part.MODEL_BUCKET},
     {"Cluster", "Keda", "ModelBucket"}),
])
def test_a_subset_holds_only_its_parts_and_their_outputs(example_config, parts, roots):
    built, doc = in_memory(example_config, parts=parts, stack_name="subset")
    assert construct_roots(doc) == roots
    expected = set().union(*(OWN_OUTPUTS.get(p, set()) for p in parts))
    assert set(doc["output"]) == expected
    assert (built.ingress is not None) == (app_lib.Part.INGRESS in parts)
    assert built.runtimes == {}
    # Providers and backend are configured as for the whole service.
    assert doc["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}
    assert doc["provider"]["aws"][0]["region"] == example_config.region
    assert ("helm" in doc["provider"]) == (app_lib.Part.CLUSTER in parts)


def test_a_part_without_the_parts_it_takes_is_refused(example_config):
    from constructs_lib._cdktf import Testing

    with pytest.raises(ValueError) as refused:
        app_lib.build_stack(Testing.app(), example_config,
                            parts={app_lib.Part.RUNTIMES, app_lib.Part.INGRESS,
                                   app_lib.Part.KARPENTER})
    assert str(refused.value) == (
        "parts: karpenter needs cluster; runtimes needs agent_repository, cluster, keda, "
        "model_bucket (add them to the parts)")
    with pytest.raises(ValueError, match="name at least one part"):
        app_lib.build_stack(Testing.app(), example_config, parts=())


def test_edits_change_or_replace_props_before_construction(example_config):
    from constructs_lib.cluster import GpuEksClusterProps

    seen = []

    def ingress(props):
        seen.append(props.stage_name)  # the props the configuration maps to
        return replace(props, stage_name="edited")

    built, doc = in_memory(example_config, parts={app_lib.Part.INGRESS, app_lib.Part.CLUSTER},
                           edits=app_lib.Edits(
                               ingress=ingress,
                               cluster=lambda _: GpuEksClusterProps(name="other")))
    assert seen == [example_config.api.stage_name]
    (stage,) = doc["resource"]["aws_api_gateway_stage"].values()
    assert stage["stage_name"] == "edited"
    (cluster,) = doc["resource"]["aws_eks_cluster"].values()
    assert cluster["name"] == "other"
    assert built.cluster is not None and built.cluster.physical_cluster_name == "other"


def test_emulation_points_every_service_at_the_emulator(example_config):
    _, doc = in_memory(example_config, parts=app_lib.INGRESS_ONLY,
                       emulation=app_lib.Emulation(endpoint="http://127.0.0.1:4566"))
    (provider,) = doc["provider"]["aws"]
    (endpoints,) = provider["endpoints"]
    assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
    assert len(endpoints) == len(app_lib.EMULATED_SERVICES)
    assert provider["s3_use_path_style"] is True
    # The emulator has no API Gateway account settings: the ingress leaves them alone.
    assert "aws_api_gateway_account" not in doc["resource"]
    _, real = in_memory(example_config, parts=app_lib.INGRESS_ONLY)
    assert "endpoints" not in real["provider"]["aws"][0]
    assert "aws_api_gateway_account" in real["resource"]
