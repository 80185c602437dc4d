"""The identity policies of the runtimes, KEDA and Karpenter, rendered with placeholder
ARNs and checked with parliament: nothing above LOW except parliament's own false
positives, each pinned here with the reason it is one, and every LOW explained."""

from __future__ import annotations

import json
from typing import Any

import pytest
from parliament import analyze_policy_string, enhance_finding

from tests.runtime.placeholders import resolve_all

GROUPS = ("Keda/", "Runtime-", "Karpenter/")
SEVERITY_ORDER = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")

# LOW findings we accept, keyed by (policy path, issue), with the reason. None today: a
# LOW that appears must be looked at and explained here (or fixed).
EXPLAINED_LOW: dict[tuple[str, str], str] = {}

# Findings above LOW that are parliament's mistakes, not the policy's. Each is pinned to the
# policy, the issue and the exact (action, resource format) pairs it reports, so any other
# finding, or a change in these, fails the test.
_RUN_INSTANCES_SPLIT = (
    "ec2:RunInstances and ec2:CreateFleet touch several resource types in one request "
    "(image, snapshot, security group, subnet, launch template, instance, volume, network "
    "interface, fleet); IAM authorizes each resource against every statement, so the "
    "Karpenter v1 reference policy splits them into statements with different conditions "
    "(tag requests, tag ownership). parliament checks each statement alone and reports the "
    "resource types the other statements cover."
)
KNOWN_FALSE_POSITIVES: dict[tuple[str, str, frozenset[tuple[str, str]]], str] = {
    (
        "Karpenter/ControllerRole/ControllerDiscovery/Policy",
        "RESOURCE_MISMATCH",
        frozenset({("ssm:GetParameter", "arn:*:ssm:*:*:parameter/*")}),
    ): "AWS public parameters (parameter/aws/service/*, the Bottlerocket AMI ids) have ARNs "
       "without an account id (arn:aws:ssm:<region>::parameter/...); parliament's pattern "
       "needs a non-empty account field.",
    (
        "Karpenter/ControllerRole/ControllerNodeLifecycle/Policy",
        "RESOURCE_MISMATCH",
        frozenset({
            ("ec2:RunInstances", "arn:*:ec2:*:*:instance/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:network-interface/*"),
            ("ec2:CreateFleet", "arn:*:ec2:*:*:fleet/*"),
            ("ec2:CreateFleet", "arn:*:ec2:*:*:instance/*"),
        }),
    ): _RUN_INSTANCES_SPLIT,
    (
        "Karpenter/ControllerRole/ControllerNodeLifecycle/Policy",
        "RESOURCE_MISMATCH",
        frozenset({
            ("ec2:RunInstances", "arn:*:ec2:*::image/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:instance/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:network-interface/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:security-group/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:subnet/*"),
            ("ec2:CreateFleet", "arn:*:ec2:*:*:fleet/*"),
            ("ec2:CreateFleet", "arn:*:ec2:*:*:instance/*"),
        }),
    ): _RUN_INSTANCES_SPLIT,
    (
        "Karpenter/ControllerRole/ControllerNodeLifecycle/Policy",
        "RESOURCE_MISMATCH",
        frozenset({
            ("ec2:RunInstances", "arn:*:ec2:*::image/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:security-group/*"),
            ("ec2:RunInstances", "arn:*:ec2:*:*:subnet/*"),
        }),
    ): _RUN_INSTANCES_SPLIT,
}


def to_iam_json(statements: list[dict[str, Any]]) -> str:
    """An aws_iam_policy_document's statements as an IAM policy document."""
    out = []
    for st in statements:
        item: dict[str, Any] = {"Sid": st["sid"], "Effect": st["effect"],
                                "Action": st["actions"], "Resource": st.get("resources", [])}
        if st.get("condition"):
            condition: dict[str, dict[str, list[str]]] = {}
            for c in st["condition"]:
                condition.setdefault(c["test"], {})[c["variable"]] = c["values"]
            item["Condition"] = condition
        out.append(item)
    return json.dumps({"Version": "2012-10-17", "Statement": out}, sort_keys=True)


@pytest.fixture(scope="module")
def policies(runtime_stack) -> dict[str, str]:
    """``{policy construct path: IAM JSON}`` of every inline role policy of the groups."""
    documents = runtime_stack.doc["data"]["aws_iam_policy_document"]
    out = {}
    for body in runtime_stack.resources("aws_iam_role_policy").values():
        path = body["//"]["metadata"]["path"].split("/", 1)[1]
        if not path.startswith(GROUPS):
            continue
        reference = body["policy"]
        assert reference.startswith("${data.aws_iam_policy_document.") and reference.endswith(
            ".json}"), reference
        document = documents[reference.split(".")[2]]
        out[path] = to_iam_json(resolve_all(runtime_stack.doc, document["statement"]))
    return out


def findings(policy: str) -> list[Any]:
    found = analyze_policy_string(policy, include_community_auditors=False).findings
    for finding in found:
        enhance_finding(finding)
    return found


def test_every_group_has_policies_and_placeholders_resolved(policies):
    for group in GROUPS:
        assert any(path.startswith(group) for path in policies), group
    assert sum(path.startswith("Runtime-") for path in policies) == 12
    assert sum(path.startswith("Keda/") for path in policies) == 2
    for policy in policies.values():
        assert "${" not in policy
        assert "123456789012" in policy or "arn:aws:s3:::" in policy or '"*"' in policy


def test_no_finding_above_low_and_every_low_explained(policies):
    unexpected, seen_false_positives = [], set()
    for path, policy in sorted(policies.items()):
        for finding in findings(policy):
            severity = finding.severity
            if severity in ("INFO",):
                continue
            if severity == "LOW":
                if (path, finding.issue) not in EXPLAINED_LOW:
                    unexpected.append(f"{path}: LOW {finding.issue} {finding.detail}")
                continue
            pairs = frozenset((d["action"], d["required_format"])
                              for d in finding.detail) if finding.issue == "RESOURCE_MISMATCH" \
                else frozenset()
            key = (path, finding.issue, pairs)
            if key in KNOWN_FALSE_POSITIVES:
                seen_false_positives.add(key)
            else:
                unexpected.append(f"{path}: {severity} {finding.issue} {finding.detail}")
    assert unexpected == []
    # A pinned false positive that no longer shows up should be removed from the list.
    assert seen_false_positives == set(KNOWN_FALSE_POSITIVES)


@pytest.mark.parametrize("group", ["Keda/", "Runtime-"])
def test_keda_and_runtime_policies_have_no_findings_at_all(policies, group):
    for path, policy in policies.items():
        if path.startswith(group):
            assert [(f.issue, f.detail) for f in findings(policy)] == [], path


def test_parliament_flags_what_it_should(policies):
    """The analysis is live: a wildcard action and a mistyped resource are findings."""
    bad = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:GetQueueAttributes",
         "Resource": "arn:aws:sns:us-west-2:123456789012:topic"},
    ]})
    issues = {f.issue for f in findings(bad)}
    assert "RESOURCE_MISMATCH" in issues
    assert {f.severity for f in findings(bad)} & {"MEDIUM", "HIGH", "CRITICAL"}
