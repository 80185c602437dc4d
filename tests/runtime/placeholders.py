"""Realistic stand-in values for the Terraform references in a synthesized stack.

A synthesized value such as ``'${aws_sqs_queue.Ingress_Runtime-x_Queue_1234.url}'`` is only
known after ``terraform apply``. To render a chart or analyse a policy with what the stack
will really carry, each reference is replaced by a value shaped like the one AWS would
return, built from the referenced resource's own arguments (its name, its bucket). An
unknown kind of reference is an error, never silently left in place.
"""

from __future__ import annotations

import re
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-west-2"
KEY_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

REFERENCE = re.compile(r"\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}")

_ARN_FORMATS = {
    "aws_sqs_queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws_sns_topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws_s3_bucket": "arn:aws:s3:::{name}",
    "aws_dynamodb_table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "aws_kms_key": "arn:aws:kms:{region}:{account}:key/" + KEY_ID,
    "aws_iam_role": "arn:aws:iam::{account}:role/{name}",
    "aws_eks_cluster": "arn:aws:eks:{region}:{account}:cluster/{name}",
    "aws_ecr_repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws_cloudwatch_event_rule": "arn:aws:events:{region}:{account}:rule/{name}",
}
_DATA = {
    ("aws_caller_identity", "account_id"): ACCOUNT,
    ("aws_region", "name"): REGION,
    ("aws_region", "region"): REGION,
    ("aws_region", "id"): REGION,
    ("aws_partition", "partition"): "aws",
    ("aws_partition", "dns_suffix"): "amazonaws.com",
}


class UnknownReference(KeyError):
    pass


def _body(doc: dict[str, Any], data: bool, rtype: str, rid: str) -> dict[str, Any]:
    block = doc.get("data" if data else "resource", {})
    try:
        return block[rtype][rid]
    except KeyError:
        where = f"{'data.' if data else ''}{rtype}.{rid}"
        raise UnknownReference(f"{where} is not in the stack") from None


def _name(doc: dict[str, Any], data: bool, rtype: str, rid: str) -> str:
    body = _body(doc, data, rtype, rid)
    for key in ("name", "bucket", "cluster_name"):
        value = body.get(key)
        if isinstance(value, str):
            return resolve(doc, value)
    return rid.lower().replace("_", "-")[:60]


def _value(doc: dict[str, Any], match: re.Match[str]) -> str:
    data, rtype, rid, attr = bool(match.group(1)), match.group(2), match.group(3), match.group(4)
    if data and (rtype, attr) in _DATA:
        return _DATA[(rtype, attr)]
    name = _name(doc, data, rtype, rid)
    if attr in ("name", "bucket", "id", "cluster_name") and rtype != "aws_kms_key":
        return name
    if attr == "url" and rtype == "aws_sqs_queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    if attr == "repository_url" and rtype == "aws_ecr_repository":
        return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
    if attr == "arn" and rtype in _ARN_FORMATS:
        return _ARN_FORMATS[rtype].format(region=REGION, account=ACCOUNT, name=name)
    if attr in ("key_id", "id") and rtype == "aws_kms_key":
        return KEY_ID
    raise UnknownReference(f"no placeholder for {match.group(0)}")


def resolve(doc: dict[str, Any], text: str) -> str:
    """``text`` with every Terraform reference replaced by a placeholder value."""
    out = REFERENCE.sub(lambda m: _value(doc, m), text)
    if "${" in out:
        raise UnknownReference(f"an expression is left in {out!r}")
    return out


def resolve_all(doc: dict[str, Any], value: Any) -> Any:
    """``resolve`` applied to every string inside ``value`` (lists, dicts)."""
    if isinstance(value, str):
        return resolve(doc, value)
    if isinstance(value, list):
        return [resolve_all(doc, v) for v in value]
    if isinstance(value, dict):
        return {k: resolve_all(doc, v) for k, v in value.items()}
    return value
