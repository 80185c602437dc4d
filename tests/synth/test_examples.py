"""The example under examples/ synthesizes and validates: the constructs work in a stack
that is not ours, with the user's provider and backend."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sdaas.config import REPO_ROOT
from tests.support.terraform import Terraform

EXAMPLE = REPO_ROOT / "examples" / "ingress_in_your_stack" / "main.py"


@pytest.fixture(scope="module")
def example_stack(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("example_ingress", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outdir = tmp_path_factory.mktemp("example")
    module.build(str(outdir)).synth()
    return outdir / "stacks" / "my-team-stack"


def test_example_creates_the_front_door_and_grants_its_worker(example_stack):
    doc = json.loads((example_stack / "cdk.tf.json").read_text())
    assert doc["provider"]["aws"][0]["region"] == "eu-west-1"
    queues = {q["name"] for q in doc["resource"]["aws_sqs_queue"].values()}
    assert queues == {"myteam-sdxl-tasks", "myteam-sdxl-dlq-intake", "myteam-sdxl-dlq"}
    policies = {p["name"] for p in doc["resource"]["aws_iam_role_policy"].values()
                if "Worker" in p["//"]["metadata"]["path"]}
    assert policies == {"ConsumeTasks-sdxl", "WriteOutputs", "UpdateTaskStatus",
                        "PublishResults"}
    (role_id,) = [rid for rid, r in doc["resource"]["aws_iam_role"].items()
                  if r["//"]["metadata"]["path"].endswith("/Worker/Role")]
    for policy in doc["resource"]["aws_iam_role_policy"].values():
        if "Worker" in policy["//"]["metadata"]["path"]:
            assert policy["role"] == f"${{aws_iam_role.{role_id}.name}}"


@pytest.mark.terraform
def test_example_validates_with_terraform(example_stack):
    tf = Terraform(example_stack)
    tf.init()
    assert '"valid": true' in tf.run("validate", "-json").stdout
