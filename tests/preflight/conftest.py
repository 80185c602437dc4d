"""Clients for the pre-flight checks: moto's server where it answers, recorded responses else.

moto answers IAM, STS, S3 and EC2 (instance types and offerings come from its bundled copy
of AWS's data). It does not answer Service Quotas for EC2 (see
test_moto_cannot_answer_ec2_quotas), so those calls get recorded responses through
botocore's Stubber.

Each test runs in its own moto account (moto's ``x-moto-account-id`` header), so IAM state
never leaks between tests and nothing is reset under other test modules sharing the server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sdaas.preflight import Clients

REGION = "us-west-2"
_accounts = itertools.count(210000000001)


def moto_client(endpoint: str, service: str, account: str, region: str = REGION) -> Any:
    client = boto3.client(service, region_name=region, endpoint_url=endpoint)

    def to_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-send", to_account)
    return client


def quota_response(code: str, value: float, *, default: bool = False) -> dict[str, Any]:
    """GetServiceQuota / GetAWSDefaultServiceQuota as AWS answers for the EC2 G/VT quotas."""
    spot = code == "L-3819A6DF"
    account = "" if default else "123456789012"
    return {
        "Quota": {
            "ServiceCode": "ec2",
            "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:{account}:ec2/{code}",
            "QuotaCode": code,
            "QuotaName": "All G and VT Spot Instance Requests"
            if spot
            else "Running On-Demand G and VT instances",
            "Value": value,
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
            "UsageMetric": {
                "MetricNamespace": "AWS/Usage",
                "MetricName": "ResourceCount",
                "MetricDimensions": {
                    "Class": "G/Spot" if spot else "G/OnDemand",
                    "Resource": "vCPU",
                    "Service": "EC2",
                    "Type": "Resource",
                },
                "MetricStatisticRecommendation": "Maximum",
            },
            **({} if default else {"QuotaAppliedAtLevel": "ACCOUNT"}),
        }
    }


class Harness:
    """moto-backed clients for one fresh account, plus a stubbed Service Quotas client."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.account = str(next(_accounts))
        self.quotas = boto3.client("service-quotas", region_name=REGION)
        self.quota_stub = Stubber(self.quotas)

    def client(self, service: str, region: str = REGION) -> Any:
        return moto_client(self.endpoint, service, self.account, region)

    def clients(self, **overrides: Any) -> Clients:
        made = {
            "sts": self.client("sts"),
            "iam": self.client("iam"),
            "ec2": self.client("ec2"),
            "service_quotas": self.quotas,
            "s3": self.client("s3"),
        }
        made.update(overrides)
        return Clients(**made)

    def quota(self, code: str, value: float) -> None:
        self.quota_stub.add_response(
            "get_service_quota",
            quota_response(code, value),
            expected_params={"ServiceCode": "ec2", "QuotaCode": code},
        )

    def quota_error(self, code: str, error: str, status: int, message: str) -> None:
        self.quota_stub.add_client_error(
            "get_service_quota",
            service_error_code=error,
            service_message=message,
            http_status_code=status,
            expected_params={"ServiceCode": "ec2", "QuotaCode": code},
        )

    def spot_role(self) -> None:
        # moto's create_service_linked_role names the spot role "AWSServiceRoleForspot";
        # AWS names it AWSServiceRoleForEC2Spot, so create it the way AWS shows it.
        self.client("iam").create_role(
            RoleName="AWSServiceRoleForEC2Spot",
            Path="/aws-service-role/spot.amazonaws.com/",
            AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
        )

    def bucket(self, name: str, region: str = REGION) -> None:
        self.client("s3", region).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
        )


@pytest.fixture
def harness(emulator: Any) -> Iterator[Harness]:
    h = Harness(emulator.endpoint)
    with h.quota_stub:
        yield h


@pytest.fixture
def unique_bucket(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Bucket names are global in moto as in AWS: derive them from the test's name."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    return lambda suffix: f"pf-{base}-{suffix}"[:63].strip("-")
