"""The library's API seen by a consumer: grants take a role in any of its forms and return
what they created; a cluster owned elsewhere serves the constructs that run on a cluster;
settings are validated in the user's words."""

from __future__ import annotations

import json
import re

import pytest

from constructs_lib import (
    ContainerImage,
    ExistingVpcProps,
    GpuEksCluster,
    GpuEksClusterProps,
    GpuPoolRuntime,
    KarpenterGpuPool,
    KarpenterGpuPoolProps,
    KedaSqsScaler,
    ModelBucket,
    RuntimeSpec,
    SdRuntime,
    SdRuntimeProps,
    ServerlessIngress,
    ServerlessIngressProps,
    _cdktf,
)
from constructs_lib._cdktf import App, Construct, TerraformStack
from constructs_lib._providers import aws
from constructs_lib.iam import Grant, Role, Statement, grant, role_name_of, service_principal

STATEMENT = Statement(sid="Read", actions=("s3:GetObject",),
                      resources=("arn:aws:s3:::b/*",))


@pytest.fixture(scope="module")
def stack():
    return TerraformStack(_cdktf.Testing.app(), "probe")


def test_a_role_is_a_name_a_construct_with_a_role_name_or_an_iam_role():
    stack = TerraformStack(_cdktf.Testing.app(), "roles")
    role = Role(stack, "Role", name="r1", assumed_by=service_principal("ec2.amazonaws.com"))
    resource = aws.iam_role.IamRole(stack, "Resource", name="r2", assume_role_policy="{}")
    looked_up = aws.data_aws_iam_role.DataAwsIamRole(stack, "Existing", name="r3")
    assert role_name_of("team-role") == "team-role"
    for key, form in (("Name", "team-role"), ("Ours", role), ("Resource", resource),
                      ("DataSource", looked_up)):
        grant(f"Grant{key}", [STATEMENT], role=form, scope=stack)
    doc = json.loads(_cdktf.Testing.synth(stack))
    roles = {p["name"]: p["role"] for p in doc["resource"]["aws_iam_role_policy"].values()}
    assert roles["GrantName"] == "team-role"
    assert re.fullmatch(r"\$\{aws_iam_role\.Role_[0-9A-F]{8}\.name\}", roles["GrantOurs"])
    assert roles["GrantResource"] == "${aws_iam_role.Resource.name}"
    assert roles["GrantDataSource"] == "${data.aws_iam_role.Existing.name}"
    with pytest.raises(TypeError, match="got int"):
        role_name_of(42)
    with pytest.raises(ValueError, match="empty role name"):
        role_name_of("")


def test_a_grant_returns_the_policy_it_created(stack):
    scope = Construct(stack, "Grants")
    resource = aws.iam_role.IamRole(scope, "Team", name="team", assume_role_policy="{}")
    made = grant("ReadBucket", [STATEMENT], role=resource)
    assert isinstance(made, Grant)
    assert made.policy_name == "ReadBucket" and made.actions == ("s3:GetObject",)
    assert made.scope.node.scope is resource  # under the role construct by default
    assert made.policy.node.path.endswith("Grants/Team/ReadBucket/Policy")
    with pytest.raises(ValueError, match=r"a role given by name .'team'. needs scope="):
        grant("ByName", [STATEMENT], role="team")
    by_name = grant("ByName", [STATEMENT], role="team", scope=scope)
    assert by_name.role_name == "team" and by_name.scope.node.scope is scope


def _ingress(scope) -> ServerlessIngress:
    return ServerlessIngress(scope, "Ingress", props=ServerlessIngressProps(
        name="probe", runtimes=(RuntimeSpec(name="rt", type="comfyui"),),
        tags={"team": "t"}))


def test_ingress_grants_on_a_consumer_role_synthesize_exact_policies():
    stack = TerraformStack(_cdktf.Testing.app(), "grants")
    ingress = _ingress(stack)
    role = aws.iam_role.IamRole(stack, "Service", name="service", assume_role_policy="{}")
    grants = [ingress.grant_submit_tasks(role), ingress.grant_read_results(role),
              ingress.grant_consume(role, "rt")]
    assert [g.policy_name for g in grants] == ["SubmitTasks", "ReadResults", "ConsumeTasks-rt"]
    assert grants[0].actions == ("sns:Publish", "kms:GenerateDataKey", "kms:Decrypt")
    doc = json.loads(_cdktf.Testing.synth(stack))
    policies = {p["name"]: p for p in doc["resource"]["aws_iam_role_policy"].values()
                if p["name"] in ("SubmitTasks", "ReadResults", "ConsumeTasks-rt")}
    assert len(policies) == 3
    assert {p["role"] for p in policies.values()} == {"${aws_iam_role.Service.name}"}
    with pytest.raises(KeyError, match="no queue for runtime 'ghost'; configured: rt"):
        ingress.grant_consume(role, "ghost")


def test_props_check_tags_and_accept_a_mapping():
    props = ServerlessIngressProps(runtimes=(RuntimeSpec(name="a", type="sdwebui"),),
                                   tags={"b": "2", "a": "1"})
    assert props.tags == (("a", "1"), ("b", "2"))
    with pytest.raises(ValueError, match="tags: a tag key is empty"):
        GpuEksClusterProps(tags={"": "x"})
    with pytest.raises(ValueError, match='tags: "aws:x" uses the reserved prefix aws:'):
        SdRuntimeProps(runtime="rt", tags={"aws:x": "y"})


def test_subnet_references_cannot_name_discovery_tags():
    stack = TerraformStack(App(), "refs")
    subnet = aws.subnet.Subnet(stack, "S", vpc_id="vpc-0abc12345", cidr_block="10.0.0.0/24")
    with pytest.raises(ValueError, match="tag_subnets_for_discovery needs literal subnet ids"):
        GpuEksClusterProps(vpc=ExistingVpcProps(vpc_id="vpc-0abc12345",
                                                private_subnet_ids=(subnet.id, "subnet-0abc1234")))
    ok = ExistingVpcProps(vpc_id="vpc-0abc12345", private_subnet_ids=(subnet.id, "subnet-0abc1234"),
                          tag_subnets_for_discovery=False)
    assert ok.problems() == []


def test_the_cluster_constructs_run_on_a_cluster_owned_elsewhere():
    stack = TerraformStack(_cdktf.Testing.app(), "existing")
    ingress = _ingress(stack)
    cluster = GpuEksCluster.from_attributes(stack, "Cluster", cluster_name="shared-gpu",
                                            kubernetes_version="1.35", system_node_count=3)
    pool = KarpenterGpuPool(stack, "Karpenter", cluster=cluster, props=KarpenterGpuPoolProps(
        name="probe", runtimes=(GpuPoolRuntime(name="rt", task_timeout_seconds=600),)))
    scaler = KedaSqsScaler(stack, "Keda", cluster=cluster)
    models = ModelBucket(stack, "Models")
    runtime = SdRuntime(stack, "Runtime-rt", cluster=cluster, ingress=ingress, pool=pool,
                        scaler=scaler, model_bucket=models,
                        props=SdRuntimeProps(runtime="rt", name="probe", agent_image=(
                            ContainerImage.parse("registry.example/agent:1.0.0"))))
    _cdktf.TerraformOutput(stack, "runtime_region", value=runtime.values["aws"]["region"])
    doc = json.loads(_cdktf.Testing.synth(stack))
    (region,) = [name for name in doc["data"]["aws_region"] if name.startswith("Cluster_Region")]
    assert doc["output"]["runtime_region"]["value"] == f"${{data.aws_region.{region}.id}}"
    assert "aws_eks_cluster" not in doc.get("resource", {})
    ((data_id, looked_up),) = doc["data"]["aws_eks_cluster"].items()
    assert looked_up["name"] == "shared-gpu"
    (trust,) = [d for name, d in doc["data"]["aws_iam_policy_document"].items()
                if name.startswith("Karpenter_ControllerRole_Trust")]
    (condition,) = [c for c in trust["statement"][0]["condition"]
                    if c["variable"] == "aws:SourceArn"]
    assert condition["values"] == [f"${{data.aws_eks_cluster.{data_id}.arn}}"]
    associations = doc["resource"]["aws_eks_pod_identity_association"].values()
    assert {a["cluster_name"] for a in associations} == {
        f"${{data.aws_eks_cluster.{data_id}.name}}"}
    assert len(associations) == 3  # Karpenter's controller, KEDA's operator, the runtime
    assert cluster.kubernetes_connection.exec_args[:3] == ("eks", "get-token", "--cluster-name")
    with pytest.raises(ValueError, match="cluster_name must be the cluster's literal name"):
        GpuEksCluster.from_attributes(stack, "Bad", cluster_name=cluster.cluster_name,
                                      kubernetes_version="1.35")


def test_a_model_bucket_owned_elsewhere_is_looked_up_and_granted_with_its_key():
    stack = TerraformStack(_cdktf.Testing.app(), "bucket")
    key = "arn:aws:kms:us-west-2:123456789012:key/0c5b1f0e-1111-2222-3333-444455556666"
    models = ModelBucket.from_attributes(stack, "Models", bucket_name="team-models",
                                         kms_key_arn=key)
    reader = aws.iam_role.IamRole(stack, "Reader", name="reader", assume_role_policy="{}")
    made = models.grant_read(reader, prefix="sdxl")
    assert not models.created
    assert made.actions == ("s3:ListBucket", "s3:GetObject", "kms:Decrypt")
    doc = json.loads(_cdktf.Testing.synth(stack))
    assert "aws_s3_bucket" not in doc.get("resource", {})
    ((_, bucket),) = doc["data"]["aws_s3_bucket"].items()
    assert bucket["bucket"] == "team-models"
