"""Pre-flight checks against moto's server, with recorded Service Quotas responses."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from sdaas import preflight
from sdaas.preflight import (
    BUILTIN_GPU_INSTANCE_TYPES,
    QUOTA_ON_DEMAND,
    QUOTA_SPOT,
    InstanceShape,
    PreflightInputs,
    Status,
    describe_error,
    main,
    required_vcpus,
    run_checks,
)
from tests.preflight.conftest import REGION, Harness

pytestmark = pytest.mark.emulator


def inputs(**overrides: Any) -> PreflightInputs:
    values: dict[str, Any] = {
        "region": REGION,
        "instance_families": ("g6",),
        "gpu_limit": 8,
        "spot": True,
        "on_demand": True,
        "model_bucket": None,
        "availability_zones": ("us-west-2a", "us-west-2b"),
    }
    values.update(overrides)
    return PreflightInputs(**values)


def by_name(results: list[preflight.CheckResult]) -> dict[str, preflight.CheckResult]:
    return {r.name: r for r in results}


def all_quotas_ok(h: Harness) -> None:
    h.quota(QUOTA_ON_DEMAND, 1024.0)
    h.quota(QUOTA_SPOT, 1024.0)


# ------------------------------------------------------------------------------ inputs


def test_inputs_report_every_problem():
    with pytest.raises(ValueError, match="invalid pre-flight inputs") as caught:
        PreflightInputs(
            region="us-west-2",
            instance_families=["g6", "G6.XL", "g6"],
            gpu_limit=0,
            spot=False,
            on_demand=False,
            model_bucket="Not_A_Bucket",
            availability_zones=["us-east-1a", "usw2-az1", "zone-9"],
        )
    assert str(caught.value).splitlines()[1:] == [
        "  - instance_families: 'G6.XL' is not a family name like g6",
        "  - instance_families lists a family twice",
        "  - gpu_limit must be >= 1 (got 0)",
        "  - at least one of spot and on_demand must be enabled",
        "  - model_bucket: 'Not_A_Bucket' is not a valid bucket name",
        "  - availability_zones: 'zone-9' is neither an AZ name nor an ID",
        "  - availability_zones: use AZ names or AZ IDs, not both",
        "  - availability_zones: us-east-1a is not in region us-west-2",
    ]


def test_inputs_are_frozen_and_take_lists():
    made = PreflightInputs(REGION, ["g6", "g5"], 4, True, False, "models", ["usw2-az1"])
    assert made.instance_families == ("g6", "g5")
    assert made.availability_zones == ("usw2-az1",)
    assert made.uses_zone_ids is True
    with pytest.raises(AttributeError):
        made.gpu_limit = 8  # type: ignore[misc]


# ------------------------------------------------------------------- sizing (pure)


def test_required_vcpus_uses_the_largest_type_and_reports_the_worst_case():
    need = required_vcpus(["g6"], 8)
    assert need is not None
    assert (need.vcpus, need.instance_type, need.vcpus_per_gpu) == (192, "g6.48xlarge", 24)
    assert (need.worst_case_vcpus, need.worst_case_instance_type) == (512, "g6.16xlarge")


def test_required_vcpus_across_families_and_rounding_up():
    need = required_vcpus(["gr6", "g4dn"], 3)
    assert need is not None
    assert (need.vcpus, need.instance_type) == (36, "g4dn.metal")  # 96 vCPUs / 8 GPUs x 3
    assert (need.worst_case_vcpus, need.worst_case_instance_type) == (192, "g4dn.16xlarge")
    odd = {"x9.big": InstanceShape(10, 3), "x9.frac": InstanceShape(2, 0)}
    assert required_vcpus(["x9"], 2, odd) == preflight.VcpuRequirement(
        vcpus=7, instance_type="x9.big", vcpus_per_gpu=10 / 3,
        worst_case_vcpus=7, worst_case_instance_type="x9.big",
    )  # fmt: skip
    assert required_vcpus(["p5"], 8) is None  # not in the built-in G table
    assert required_vcpus(["x9"], 1, {"x9.frac": InstanceShape(2, 0)}) is None


@given(
    families=st.sets(st.sampled_from(["g4dn", "g5", "g5g", "g6", "g6e", "gr6", "g7e"]), min_size=1),
    gpu_limit=st.integers(min_value=1, max_value=512),
)
def test_required_vcpus_bounds(families, gpu_limit):
    need = required_vcpus(families, gpu_limit)
    assert need is not None
    shapes = [s for t, s in BUILTIN_GPU_INSTANCE_TYPES.items() if t.split(".")[0] in families]
    least = min(s.vcpus / s.gpus for s in shapes)
    assert gpu_limit * least <= need.vcpus <= need.worst_case_vcpus
    assert need.worst_case_vcpus == -(-gpu_limit * max(s.vcpus // s.gpus for s in shapes) // 1)
    assert need.vcpus == -(-gpu_limit * BUILTIN_GPU_INSTANCE_TYPES[need.instance_type].vcpus
                           // BUILTIN_GPU_INSTANCE_TYPES[need.instance_type].gpus)  # fmt: skip


def test_builtin_table_matches_aws_instance_data():
    """The fallback table agrees with AWS's DescribeInstanceTypes data as bundled by moto."""
    raw = resources.files("moto.ec2").joinpath("resources/instance_types.json.gz").read_bytes()
    aws = json.loads(gzip.decompress(raw))
    for name, shape in sorted(BUILTIN_GPU_INSTANCE_TYPES.items()):
        gpus = aws[name]["GpuInfo"]["Gpus"]
        assert shape == InstanceShape(
            vcpus=aws[name]["VCpuInfo"]["DefaultVCpus"],
            gpus=sum(g["Count"] for g in gpus),
            gpu_manufacturer=gpus[0]["Manufacturer"],
        ), name
    families = {name.split(".")[0] for name in BUILTIN_GPU_INSTANCE_TYPES}
    whole_gpu_types = {
        name
        for name, item in aws.items()
        if name.split(".")[0] in families and item.get("GpuInfo", {}).get("Gpus")
    }
    assert whole_gpu_types == set(BUILTIN_GPU_INSTANCE_TYPES)


# ------------------------------------------------------------------- spot role (moto)


def test_missing_spot_role_fails_with_the_command_to_create_it(harness):
    all_quotas_ok(harness)
    result = by_name(run_checks(inputs(), harness.clients()))["spot-service-role"]
    assert result.status is Status.FAIL
    assert "AWSServiceRoleForEC2Spot does not exist" in result.reason
    assert result.fix == "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"


def test_existing_spot_role_passes(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    result = by_name(run_checks(inputs(), harness.clients()))["spot-service-role"]
    assert result.status is Status.OK
    assert result.reason == (
        f"AWSServiceRoleForEC2Spot exists (arn:aws:iam::{harness.account}:role/"
        "aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot)"
    )


def test_spot_role_and_quota_not_asked_for_without_spot(harness):
    iam = boto3.client("iam", region_name=REGION)
    with Stubber(iam):  # no responses queued: any IAM call would raise
        harness.quota(QUOTA_ON_DEMAND, 1024.0)  # and only the on-demand quota is asked
        results = by_name(run_checks(inputs(spot=False), harness.clients(iam=iam)))
    assert results["spot-service-role"].status is Status.OK
    assert results["spot-service-role"].reason.startswith("not needed")
    assert results["spot-gpu-quota"].reason == "not needed: the GPU pool does not use spot"


# ------------------------------------------------------------- quotas (recorded answers)


def test_moto_cannot_answer_ec2_quotas(emulator):
    """Why the quota tests use recorded answers; fails once moto learns EC2 quotas."""
    client = boto3.client("service-quotas", region_name=REGION, endpoint_url=emulator.endpoint)
    with pytest.raises(ClientError) as caught:
        client.get_service_quota(ServiceCode="ec2", QuotaCode=QUOTA_ON_DEMAND)
    assert caught.value.response["Error"]["Code"] == "NoSuchResourceException"


def test_quota_below_largest_type_fails_with_increase_command(harness):
    harness.spot_role()
    harness.quota(QUOTA_ON_DEMAND, 64.0)
    harness.quota(QUOTA_SPOT, 1024.0)
    results = by_name(run_checks(inputs(), harness.clients()))
    on_demand = results["on-demand-gpu-quota"]
    assert on_demand.status is Status.FAIL
    assert on_demand.reason == (
        "Running On-Demand G and VT instances (L-DB2E81BA) is 64 vCPUs; the GPU pool may "
        "need 192 (8 GPUs x 24 vCPUs per GPU on g6.48xlarge)"
    )
    assert on_demand.fix == (
        "aws service-quotas request-service-quota-increase --service-code ec2 --quota-code "
        "L-DB2E81BA --region us-west-2 --desired-value 192, or lower the pool's GPU limit"
    )
    assert results["spot-gpu-quota"].status is Status.OK


def test_quota_enough_for_largest_type_but_not_worst_case_warns(harness):
    harness.spot_role()
    harness.quota(QUOTA_ON_DEMAND, 1024.0)
    harness.quota(QUOTA_SPOT, 256.0)
    spot = by_name(run_checks(inputs(), harness.clients()))["spot-gpu-quota"]
    assert spot.status is Status.WARN
    assert "All G and VT Spot Instance Requests (L-3819A6DF) is 256 vCPUs" in spot.reason
    assert "not for 512 if every GPU runs on g6.16xlarge" in spot.reason
    assert spot.fix is not None and "--quota-code L-3819A6DF" in spot.fix


def test_quota_exactly_enough_passes(harness):
    harness.spot_role()
    harness.quota(QUOTA_ON_DEMAND, 512.0)
    harness.quota(QUOTA_SPOT, 512.0)
    results = by_name(run_checks(inputs(), harness.clients()))
    assert results["on-demand-gpu-quota"].status is Status.OK
    assert results["spot-gpu-quota"].status is Status.OK
    assert results["spot-gpu-quota"].reason.endswith("is 512 vCPUs; the GPU pool may need 192")


def test_quota_falls_back_to_the_aws_default(harness):
    harness.spot_role()
    harness.quota_error(QUOTA_ON_DEMAND, "NoSuchResourceException", 400, "not applied")
    harness.quota_stub.add_response(
        "get_aws_default_service_quota",
        {"Quota": {"QuotaCode": QUOTA_ON_DEMAND, "Value": 0.0}},
        expected_params={"ServiceCode": "ec2", "QuotaCode": QUOTA_ON_DEMAND},
    )
    harness.quota(QUOTA_SPOT, 1024.0)
    result = by_name(run_checks(inputs(), harness.clients()))["on-demand-gpu-quota"]
    assert result.status is Status.FAIL
    assert "(L-DB2E81BA) is 0 vCPUs" in result.reason


def test_quota_access_denied_warns_and_names_the_permission(harness):
    harness.spot_role()
    harness.quota_error(QUOTA_ON_DEMAND, "AccessDeniedException", 400, "not authorized")
    harness.quota(QUOTA_SPOT, 1024.0)
    result = by_name(run_checks(inputs(), harness.clients()))["on-demand-gpu-quota"]
    assert result.status is Status.WARN
    assert result.reason == (
        "could not check: servicequotas:GetServiceQuota was denied (AccessDeniedException)"
    )


def test_families_outside_g_and_vt_are_named_not_sized(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    results = by_name(run_checks(inputs(instance_families=("g6", "p5")), harness.clients()))
    assert results["on-demand-gpu-quota"].reason.endswith(
        "(not covered by this quota, not checked: p5)"
    )
    assert "may need 192" in results["on-demand-gpu-quota"].reason  # p5 not in the sizing


# --------------------------------------------------------- families and AZs (moto EC2)


def test_family_offered_in_every_chosen_az_passes(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    results = by_name(run_checks(inputs(), harness.clients()))
    assert results["family g6"].status is Status.OK
    assert results["family g6"].reason == "g6 is offered in us-west-2a, us-west-2b"


def test_family_missing_from_some_azs_warns_and_from_all_fails(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    some = inputs(instance_families=("g5", "g6"), availability_zones=("us-west-2a", "us-west-2d"))
    results = by_name(run_checks(some, harness.clients()))
    assert results["family g5"].status is Status.WARN
    assert results["family g5"].reason == (
        "g5 is not offered in us-west-2d (offered in us-west-2a): its nodes launch only there"
    )
    assert results["family g6"].status is Status.OK

    harness.quota(QUOTA_ON_DEMAND, 1024.0)
    harness.quota(QUOTA_SPOT, 1024.0)
    none = inputs(instance_families=("g5",), availability_zones=("us-west-2d",))
    result = by_name(run_checks(none, harness.clients()))["family g5"]
    assert result.status is Status.FAIL
    assert result.reason == "g5 is not offered in any of us-west-2d: no GPU node can launch"
    assert "Name=instance-type,Values=g5.*" in (result.fix or "")


def test_zone_ids_and_all_zones(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    by_id = inputs(instance_families=("g5",), availability_zones=("usw2-az1", "usw2-az4"))
    result = by_name(run_checks(by_id, harness.clients()))["family g5"]
    assert result.reason == (
        "g5 is not offered in usw2-az4 (offered in usw2-az1): its nodes launch only there"
    )
    all_quotas_ok(harness)
    everywhere = inputs(instance_families=("g6",), availability_zones=())
    result = by_name(run_checks(everywhere, harness.clients()))["family g6"]
    assert result.reason == "g6 is offered in us-west-2a, us-west-2b, us-west-2c, us-west-2d"


def test_unknown_and_non_nvidia_families(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    results = by_name(
        run_checks(inputs(instance_families=("g6", "g9x", "g4ad")), harness.clients())
    )
    assert results["family g9x"].status is Status.FAIL
    assert results["family g9x"].reason == "no instance types named g9x.* exist in us-west-2"
    assert results["family g4ad"].status is Status.WARN
    assert "g4ad has AMD GPUs" in results["family g4ad"].reason


def test_instance_types_fall_back_to_the_builtin_table(harness):
    harness.spot_role()
    harness.quota(QUOTA_ON_DEMAND, 100.0)
    harness.quota(QUOTA_SPOT, 1024.0)
    ec2 = harness.client("ec2")

    def deny(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}},
            "DescribeInstanceTypes",
        )

    ec2.meta.events.register("before-call.ec2.DescribeInstanceTypes", deny)
    results = by_name(run_checks(inputs(), harness.clients(ec2=ec2)))
    assert results["instance-types"].status is Status.WARN
    assert "built-in table" in results["instance-types"].reason
    assert results["on-demand-gpu-quota"].status is Status.FAIL  # sized from the table: 192
    assert results["family g6"].status is Status.OK  # offerings still asked for its types


# ------------------------------------------------------------------ model bucket (moto)


def test_model_bucket_present_missing_and_in_another_region(harness, unique_bucket):
    harness.spot_role()
    here, there = unique_bucket("here"), unique_bucket("there")
    harness.bucket(here)
    harness.bucket(there, region="eu-west-1")
    expected = {
        here: (Status.OK, f"s3://{here} is reachable"),
        there: (Status.WARN, f"s3://{there} is reachable but in eu-west-1, not us-west-2"),
        unique_bucket("nowhere"): (Status.FAIL, f"s3://{unique_bucket('nowhere')} does not exist"),
    }
    for bucket, (status, reason) in expected.items():
        all_quotas_ok(harness)
        result = by_name(run_checks(inputs(model_bucket=bucket), harness.clients()))
        assert (result["model-bucket"].status, result["model-bucket"].reason) == (status, reason)


def test_model_bucket_access_denied_is_told_apart_from_missing(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(s3) as stub:
        # what S3 answers to HeadBucket on a bucket of another account: 403 with no body
        stub.add_client_error(
            "head_bucket",
            service_error_code="403",
            service_message="Forbidden",
            http_status_code=403,
            expected_params={"Bucket": "someone-elses-models"},
        )
        results = by_name(
            run_checks(inputs(model_bucket="someone-elses-models"), harness.clients(s3=s3))
        )
    result = results["model-bucket"]
    assert result.status is Status.FAIL
    assert result.reason.startswith("s3://someone-elses-models exists but these credentials")
    assert "s3:ListBucket on arn:aws:s3:::someone-elses-models" in (result.fix or "")


def test_no_model_bucket_is_a_warning(harness):
    harness.spot_role()
    all_quotas_ok(harness)
    result = by_name(run_checks(inputs(model_bucket=None), harness.clients()))["model-bucket"]
    assert (result.status, result.reason) == (
        Status.WARN,
        "no model bucket configured: not checked",
    )


# ------------------------------------------------------------------ report, exit codes


def test_report_has_one_line_per_check_and_exit_1_on_failure(harness, capsys, unique_bucket):
    harness.quota(QUOTA_ON_DEMAND, 64.0)
    harness.quota(QUOTA_SPOT, 1024.0)
    argv = [
        "--region", REGION, "--instance-families", "g6,g5", "--gpu-limit", "8",
        "--model-bucket", unique_bucket("absent"), "--availability-zones", "us-west-2a,us-west-2d",
    ]  # fmt: skip
    assert main(argv, clients=harness.clients()) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "Pre-flight checks for us-west-2: GPU pool g6, g5 up to 16 GPUs (8 spot, 8 on-demand) "
        "in us-west-2a, us-west-2d"
    )
    checks = out[2:-2]
    assert [line.split()[:2] for line in checks] == [
        ["OK", "credentials"],
        ["FAIL", "spot-service-role"],
        ["FAIL", "on-demand-gpu-quota"],
        ["OK", "spot-gpu-quota"],
        ["WARN", "family"],
        ["OK", "family"],
        ["FAIL", "model-bucket"],
    ]
    assert all(". Fix: " in line for line in checks if line.startswith(("FAIL", "WARN")))
    assert out[-1] == "3 failed, 1 warning, 3 passed."


def test_exit_0_when_only_warnings(harness, capsys):
    harness.spot_role()
    all_quotas_ok(harness)
    argv = ["--region", REGION, "--instance-families", "g6", "--gpu-limit", "2"]
    assert main(argv, clients=harness.clients()) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 failed, 1 warning, 5 passed."


def test_honours_aws_endpoint_url(emulator, monkeypatch, unique_bucket):
    """Clients.create picks the emulator up from AWS_ENDPOINT_URL alone."""
    bucket = unique_bucket("env")
    boto3.client("s3", region_name=REGION, endpoint_url=emulator.endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    clients = preflight.Clients.create(REGION)
    assert clients.s3.meta.endpoint_url == emulator.endpoint
    assert clients.s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert clients.sts.get_caller_identity()["Account"] == "123456789012"


def test_unreachable_aws_fails_credentials_and_stops(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: refused
    argv = ["--region", REGION, "--instance-families", "g6", "--gpu-limit", "1"]
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    assert out[2].startswith(
        "FAIL  credentials  cannot call AWS: Could not connect to the endpoint"
    )
    assert "the other checks were not run. Fix: configure credentials" in out[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--instance-families", "g6"], "--gpu-limit required without --config"),
        (["--instance-families", "g6", "--gpu-limit", "0"], "gpu_limit must be >= 1 (got 0)"),
        (
            ["--instance-families", "g6", "--gpu-limit", "1", "--capacity-types", "reserved"],
            "unknown capacity type(s): reserved",
        ),
        (["--instance-families", "g6.xlarge", "--gpu-limit", "1"], "'g6.xlarge' is not a family"),
    ],
)
def test_invalid_arguments_exit_2(capsys, argv, message):
    assert main(["--region", REGION, *argv]) == 2
    assert message in capsys.readouterr().err


def test_no_region_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["--instance-families", "g6", "--gpu-limit", "1"]) == 2
    assert "no region" in capsys.readouterr().err


def test_error_text_is_one_short_line():
    html = "<html>\n<title>500 Internal Server Error</title>\n" + "x" * 500
    error = ClientError({"Error": {"Code": "500", "Message": html}}, "GetServiceQuota")
    text = describe_error(error)
    assert "\n" not in text
    assert text.startswith("500: <html> <title>500 Internal Server Error</title> xxx")
    assert len(text) == 200 and text.endswith("...")
