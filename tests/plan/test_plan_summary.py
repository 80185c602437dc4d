"""sd-plan-summary: real plans (recorded and live), hand-made edge cases, invalid input."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdaas import plan_summary
from sdaas.plan_summary import DEFAULT_WARN_TYPES, format_path, main
from tests.plan.conftest import recorded

# ----------------------------------------------------------------------------- helpers


def summarise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plan: Any, *args: str
) -> tuple[int, str, str]:
    path = tmp_path / "plan.json"
    path.write_text(plan if isinstance(plan, str) else json.dumps(plan))
    code = main([*args, str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def section(out: str, title: str) -> list[str]:
    """The list items of the '### <title> (n)' section."""
    match = re.search(rf"^### {re.escape(title)} \((\d+)\)\n\n((?:- .*\n)*)", out, re.M)
    assert match, f"no section {title!r} in:\n{out}"
    items = match.group(2).splitlines()
    assert len(items) >= int(match.group(1))
    return items


def warned(out: str) -> dict[str, str]:
    """Address -> text of each entry in the warning block."""
    return dict(re.findall(r"^> - `([^`]+)`: (.*)$", out, re.M))


def table(out: str) -> dict[str, list[str]]:
    """Resource type row label -> cells of the counts table (header row under 'header')."""
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    parsed = {}
    for row in rows:
        cells = [cell.strip().strip("`*") for cell in row.strip("|").split("|")]
        parsed["header" if cells[0] == "Resource type" else cells[0]] = cells[1:]
    return parsed


def change(
    address: str,
    actions: list[str],
    *,
    rtype: str | None = None,
    reason: str | None = None,
    replace_paths: list[list[str | int]] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    parts = re.sub(r'\[(?:"[^"]*"|\d+)\]', "", address).split(".")
    mode = "data" if len(parts) >= 3 and parts[-3] == "data" else "managed"
    entry: dict[str, Any] = {
        "address": address,
        "mode": mode,
        "type": rtype or parts[-2],
        "name": parts[-1],
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions, "before": before, "after": after},
        **extra,
    }
    if reason:
        entry["action_reason"] = reason
    if replace_paths is not None:
        entry["change"]["replace_paths"] = replace_paths
    return entry


def plan(*changes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "planned_values": {"root_module": {}},
        "resource_changes": list(changes),
        **top,
    }


# ------------------------------------------------------------- real plans: terraform_data


def test_builtin_mixed_counts_by_type(tmp_path, capsys, builtin_plan_source):
    code, out, err = summarise(tmp_path, capsys, builtin_plan_source("builtin-mixed"))
    assert (code, err) == (0, "")
    rows = table(out)
    assert rows["header"] == [
        "Create",
        "Update",
        "Replace",
        "Delete",
        "Read",
        "No-op",
        "Forget",
    ]
    assert rows["terraform_data"] == ["2", "1", "3", "2", "0", "2", "1"]
    assert rows["data.terraform_remote_state"] == ["0", "0", "0", "0", "1", "0", "0"]
    assert rows["Total"] == ["2", "1", "3", "2", "1", "2", "1"]
    assert list(rows) == ["header", "data.terraform_remote_state", "terraform_data", "Total"]
    assert (
        "**Plan:** 2 to create, 1 to update, 3 to replace, 2 to delete (Terraform's count: "
        "5 to add, 1 to change, 5 to destroy, 1 to forget). 1 data source to read during "
        "apply, 2 unchanged."
    ) in out


def test_builtin_mixed_replacements_show_order_and_cause(tmp_path, capsys, builtin_plan_source):
    _, out, _ = summarise(tmp_path, capsys, builtin_plan_source("builtin-mixed"))
    assert section(out, "Replacements") == [
        "- `terraform_data.bucket`: create before destroy; forced by `triggers_replace`",
        "- `terraform_data.queue`: destroy before create; forced by `triggers_replace`",
        "- `terraform_data.tainted`: destroy before create; the object is tainted "
        "(an earlier apply failed part way)",
    ]


def test_builtin_mixed_deletions_reads_moves_forgets_outputs(tmp_path, capsys, builtin_plan_source):
    _, out, _ = summarise(tmp_path, capsys, builtin_plan_source("builtin-mixed"))
    assert section(out, "Deletions") == [
        "- `terraform_data.orphan`: its configuration was removed",
        "- `terraform_data.retired[0]`: its `count` index is out of range",
    ]
    assert section(out, "Data sources read during apply") == [
        "- `data.terraform_remote_state.network`: its configuration depends on values "
        "known only after apply",
    ]
    assert section(out, "Moved") == ["- `terraform_data.old_name` → `terraform_data.new_name`"]
    assert section(out, "Removed from state, not destroyed") == ["- `terraform_data.kept_outside`"]
    assert section(out, "Output changes") == [
        "- `network`: create",
        "- `retired_output`: delete",
        "- `settings`: update",
    ]  # `constant` is a no-op output and is not listed
    assert "> [!WARNING]" not in out  # terraform_data holds nothing worth a warning
    assert "No changes." not in out


def test_builtin_no_changes(tmp_path, capsys, builtin_plan_source):
    code, out, _ = summarise(tmp_path, capsys, builtin_plan_source("builtin-nochange"))
    assert code == 0
    assert out == "## Terraform plan summary\n\nNo changes.\n\n9 resources unchanged.\n"


@pytest.mark.terraform
def test_live_plans_summarise_exactly_like_the_recorded_ones(tmp_path, capsys, live_builtin_plans):
    """The recorded fixtures are still what this terraform produces (ids aside)."""
    ids = [
        {
            r["address"]: r["change"]["before"]["id"]
            for r in doc["resource_changes"]
            if r["change"]["before"]
        }
        for doc in (live_builtin_plans["builtin-mixed"], recorded("builtin-mixed"))
    ]
    assert ids[0]["terraform_data.unchanged"] != ids[1]["terraform_data.unchanged"]  # fresh
    for name in ("builtin-mixed", "builtin-nochange"):
        _, live, _ = summarise(tmp_path, capsys, live_builtin_plans[name])
        _, kept, _ = summarise(tmp_path, capsys, recorded(name))
        assert live == kept, name


# --------------------------------------------------------- real plans: AWS against moto


def test_aws_replace_warns_for_stateful_resources_only(tmp_path, capsys):
    code, out, _ = summarise(tmp_path, capsys, recorded("aws-replace"))
    assert code == 0
    warnings = warned(out)
    assert sorted(warnings) == [
        "aws_dynamodb_table.tasks[0]",
        "aws_ecr_repository.agent",
        "aws_eks_node_group.system",
        "aws_iam_role.gpu_workers",
        "aws_iam_role.karpenter_node",
        "aws_s3_bucket.models",
        "aws_sns_topic.results",
        "aws_sqs_queue.sdruntime",
    ]
    # replaced too, but cheap: an operator role and a KMS alias (the key is untouched)
    assert "aws_iam_role.keda_operator" not in warnings
    assert "aws_kms_alias.cluster" not in warnings
    assert warnings["aws_dynamodb_table.tasks[0]"].startswith("**delete**.")
    assert warnings["aws_sqs_queue.sdruntime"].startswith("**replace (destroy before create)**")
    assert warnings["aws_s3_bucket.models"].startswith("**replace (create before destroy)**")
    assert "8 stateful or expensive resources will be replaced or deleted" in out


def test_aws_node_roles_found_by_reference_and_by_name(tmp_path, capsys):
    _, out, _ = summarise(tmp_path, capsys, recorded("aws-replace"))
    warnings = warned(out)
    # gpu_workers: neither address nor name says "node"; the node group uses it
    assert (
        "used as node_role_arn of aws_eks_node_group.system"
        in (warnings["aws_iam_role.gpu_workers"])
    )
    assert "matches 'node'" in warnings["aws_iam_role.karpenter_node"]
    # with a pattern that matches nothing, only the referenced role is still a node role
    _, out, _ = summarise(tmp_path, capsys, recorded("aws-replace"), "--node-role-pattern", "^$")
    assert "aws_iam_role.gpu_workers" in warned(out)
    assert "aws_iam_role.karpenter_node" not in warned(out)


def test_aws_replace_paths_and_reasons(tmp_path, capsys):
    _, out, _ = summarise(tmp_path, capsys, recorded("aws-replace"))
    items = section(out, "Replacements")
    assert "- `aws_ecr_repository.agent`: destroy before create; requested with `-replace`" in (
        items
    )
    assert (
        "- `aws_eks_node_group.system`: destroy before create; forced by `instance_types`, "
        "`node_role_arn`"
    ) in items
    assert "- `aws_iam_role.gpu_workers`: create before destroy; forced by `path`" in items
    assert len(items) == 9
    assert table(out)["aws_iam_role"] == ["0", "0", "3", "0", "0", "1"]
    assert section(out, "Data sources read during apply") == [
        "- `data.aws_iam_policy_document.consume`: its configuration depends on values "
        "known only after apply"
    ]


def test_aws_refresh_noise_is_not_drift(tmp_path, capsys):
    doc = recorded("aws-nochange")
    # moto returns {} where the state holds null: Terraform records that as drift ...
    assert len(doc["resource_drift"]) >= 10
    code, out, _ = summarise(tmp_path, capsys, doc)
    # ... which, like Terraform's own output, is not worth a reviewer's time
    assert code == 0
    assert out == "## Terraform plan summary\n\nNo changes.\n\n19 resources unchanged.\n"


def test_relevant_drift_and_deletion_outside_terraform_are_listed(tmp_path, capsys):
    doc = recorded("aws-replace")
    queue = next(d for d in doc["resource_drift"] if d["address"] == "aws_sqs_queue.sdruntime")
    queue["change"]["after"]["arn"] = "arn:aws:sqs:us-west-2:123456789012:changed"
    doc["resource_drift"].append(
        change("aws_sns_topic.manual", ["delete"], before={"name": "x"}, after=None)
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert section(out, "Changed outside Terraform") == [
        "- `aws_sns_topic.manual`: deleted",
        "- `aws_sqs_queue.sdruntime`: updated",
        "- _15 other objects changed outside Terraform in ways no planned change depends on "
        "(not listed)._",
    ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_output_does_not_depend_on_input_order(rand):
    doc = recorded("aws-replace")
    expected = plan_summary.render(plan_summary.parse_plan(doc, "p"))
    shuffled = copy.deepcopy(doc)
    for key in ("resource_changes", "resource_drift"):
        rand.shuffle(shuffled[key])
    shuffled["output_changes"] = dict(
        rand.sample(list(shuffled["output_changes"].items()), len(shuffled["output_changes"]))
    )
    assert plan_summary.render(plan_summary.parse_plan(shuffled, "p")) == expected


# ------------------------------------------------------------------- hand-made plans


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        (["name"], "name"),
        (["vpc_config", 0, "subnet_ids"], "vpc_config[0].subnet_ids"),
        (["tags", "kubernetes.io/cluster/sd"], 'tags["kubernetes.io/cluster/sd"]'),
        (["node_group", 3], "node_group[3]"),
    ],
)
def test_format_path(path, rendered):
    assert format_path(path) == rendered


def test_replace_paths_are_rendered_sorted(tmp_path, capsys):
    doc = plan(
        change(
            "aws_eks_cluster.main",
            ["delete", "create"],
            reason="replace_because_cannot_update",
            replace_paths=[["vpc_config", 0, "subnet_ids"], ["name"]],
        )
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert section(out, "Replacements") == [
        "- `aws_eks_cluster.main`: destroy before create; forced by `name`, "
        "`vpc_config[0].subnet_ids`"
    ]


def test_brief_types_are_stateful_and_kms_alias_is_not():
    for rtype in (
        "aws_eks_cluster",
        "aws_eks_node_group",
        "aws_sqs_queue",
        "aws_dynamodb_table",
        "aws_s3_bucket",
        "aws_kms_key",
        "aws_vpc",
        "aws_ecr_repository",
    ):
        assert rtype in DEFAULT_WARN_TYPES
    assert "aws_kms_alias" not in DEFAULT_WARN_TYPES
    assert "aws_iam_role" not in DEFAULT_WARN_TYPES  # only node roles; see the node-role rule


@pytest.mark.parametrize("rtype", sorted(DEFAULT_WARN_TYPES))
def test_each_stateful_type_warns_on_replace_and_delete_only(tmp_path, capsys, rtype):
    doc = plan(
        change(f"{rtype}.created", ["create"]),
        change(f"{rtype}.updated", ["update"]),
        change(f"{rtype}.same", ["no-op"]),
        change(f"{rtype}.deleted", ["delete"]),
        change(f"{rtype}.dbc", ["delete", "create"]),
        change(f"{rtype}.cbd", ["create", "delete"]),
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert sorted(warned(out)) == [f"{rtype}.cbd", f"{rtype}.dbc", f"{rtype}.deleted"]


def test_node_roles_from_access_entries_instance_profiles_and_module_references(tmp_path, capsys):
    arn = "arn:aws:iam::123456789012:role/"
    doc = plan(
        change("aws_iam_role.karpenter", ["delete"], before={"arn": f"{arn}kp", "name": "kp"}),
        change("aws_iam_role.admin", ["delete"], before={"arn": f"{arn}admin", "name": "admin"}),
        change("aws_iam_role.profiled", ["delete"], before={"arn": f"{arn}pr", "name": "pr"}),
        change("module.pool[0].aws_iam_role.workers", ["delete", "create"], before={"name": "w"}),
        change(
            "aws_eks_access_entry.karpenter",
            ["no-op"],
            before={"principal_arn": f"{arn}kp", "type": "EC2_LINUX"},
        ),
        change(
            "aws_eks_access_entry.admin",
            ["no-op"],
            before={"principal_arn": f"{arn}admin", "type": "STANDARD"},
        ),
        change("aws_iam_instance_profile.p", ["no-op"], before={"role": "pr"}),
        configuration={
            "root_module": {
                "module_calls": {
                    "pool": {
                        "module": {
                            "resources": [
                                {
                                    "address": "aws_eks_node_group.gpu",
                                    "type": "aws_eks_node_group",
                                    "expressions": {
                                        "node_role_arn": {
                                            "references": [
                                                "aws_iam_role.workers.arn",
                                                "aws_iam_role.workers",
                                            ]
                                        }
                                    },
                                }
                            ]
                        }
                    }
                }
            }
        },
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    warnings = warned(out)
    assert sorted(warnings) == [
        "aws_iam_role.karpenter",
        "aws_iam_role.profiled",
        "module.pool[0].aws_iam_role.workers",
    ]
    assert "principal_arn of aws_eks_access_entry.karpenter" in warnings["aws_iam_role.karpenter"]
    assert "role of aws_iam_instance_profile.p" in warnings["aws_iam_role.profiled"]
    assert (
        "node_role_arn of module.pool.aws_eks_node_group.gpu"
        in (warnings["module.pool[0].aws_iam_role.workers"])
    )


def test_warn_type_option_adds_patterns(tmp_path, capsys):
    doc = plan(
        change("aws_rds_cluster.db", ["delete"]),
        change("aws_lambda_function.f", ["delete"]),
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert warned(out) == {}
    _, out, _ = summarise(tmp_path, capsys, doc, "--warn-type", "aws_rds_*")
    assert list(warned(out)) == ["aws_rds_cluster.db"]


def test_only_output_changes_is_not_no_changes(tmp_path, capsys):
    doc = plan(
        change("aws_vpc.main", ["no-op"]),
        output_changes={"endpoint": {"actions": ["update"]}, "same": {"actions": ["no-op"]}},
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert "No changes." not in out
    assert section(out, "Output changes") == ["- `endpoint`: update"]


def test_empty_configuration_plan_is_no_changes(tmp_path, capsys):
    # what terraform show -json prints for an empty configuration: no resource_changes key
    doc = {"format_version": "1.2", "planned_values": {"root_module": {}}, "applyable": False}
    code, out, _ = summarise(tmp_path, capsys, doc)
    assert (code, out) == (0, "## Terraform plan summary\n\nNo changes.\n")


def test_errored_and_incomplete_plans_are_flagged(tmp_path, capsys):
    _, out, _ = summarise(tmp_path, capsys, plan(change("aws_vpc.a", ["create"]), errored=True))
    assert "> [!CAUTION]" in out
    _, out, _ = summarise(tmp_path, capsys, plan(change("aws_vpc.a", ["create"]), complete=False))
    assert "> [!NOTE]" in out and "not complete" in out


def test_deposed_objects_and_unknown_actions(tmp_path, capsys):
    doc = plan(
        change("aws_s3_bucket.b", ["delete"], deposed="0f1e2d3c"),
        change("aws_vpc.v", ["create-then-dance"]),
    )
    _, out, _ = summarise(tmp_path, capsys, doc)
    assert "- `aws_s3_bucket.b (deposed object 0f1e2d3c)`" in section(out, "Deletions")
    assert section(out, "Other actions") == ['- `aws_vpc.v`: `["create-then-dance"]`']
    assert table(out)["header"][-1] == "Other"


def test_backticks_in_addresses_stay_inside_code_spans(tmp_path, capsys):
    _, out, _ = summarise(tmp_path, capsys, plan(change('aws_sqs_queue.q["a`b"]', ["delete"])))
    assert '> - ``aws_sqs_queue.q["a`b"]``: **delete**.' in out


def test_reads_plan_from_stdin(monkeypatch, capsys):
    doc = json.dumps(plan(change("aws_vpc.a", ["create"])))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(doc.encode())))
    assert main(["-"]) == 0
    assert table(capsys.readouterr().out)["aws_vpc"][0] == "1"


# ------------------------------------------------------------------------ invalid input


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "the file is empty"),
        (
            "{not json",
            "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2",
        ),
        ("[]", "expected a JSON object from `terraform show -json`, got an array"),
        ('{"resource_changes": []}', "no format_version"),
        ('{"format_version": "2.0", "resource_changes": []}', "unsupported format_version '2.0'"),
        ('{"format_version": "1.0", "values": {}}', "this is a state, not a plan"),
        ('{"format_version": "1.0", "variables": {}}', "neither resource_changes nor planned"),
        (
            '{"format_version": "1.2", "resource_changes": {}}',
            "resource_changes: expected an array, got an object",
        ),
    ],
)
def test_invalid_input_exits_2_naming_file_and_problem(tmp_path, capsys, content, problem):
    code, out, err = summarise(tmp_path, capsys, content)
    assert code == 2
    assert out == ""
    assert err.startswith(f"sd-plan-summary: error: {tmp_path / 'plan.json'}: ")
    assert problem in err
    assert "Traceback" not in err


def test_every_malformed_entry_is_reported(tmp_path, capsys):
    doc = plan(
        change("aws_vpc.ok", ["create"]),
        {"address": "aws_vpc.no_change", "type": "aws_vpc", "mode": "managed"},
        change("aws_vpc.bad_actions", "create"),  # type: ignore[arg-type]
        change("aws_vpc.bad_paths", ["delete", "create"], replace_paths=["name"]),  # type: ignore[list-item]
        change("aws_vpc.bad_mode", ["create"], mode="resource"),
        "not an object",
    )
    code, _, err = summarise(tmp_path, capsys, doc)
    assert code == 2
    assert err.splitlines()[1:] == [
        "  - resource_changes[1] (aws_vpc.no_change): change must be an object",
        "  - resource_changes[2] (aws_vpc.bad_actions): change.actions must be a non-empty "
        "array of strings",
        "  - resource_changes[3] (aws_vpc.bad_paths): change.replace_paths must be an array "
        "of attribute paths",
        "  - resource_changes[4] (aws_vpc.bad_mode): mode must be 'managed' or 'data', "
        "got 'resource'",
        "  - resource_changes[5]: expected an object, got a string",
    ]


def test_binary_plan_file_gets_a_hint(tmp_path, capsys):
    path = tmp_path / "plan.out"
    path.write_bytes(b"PK\x03\x04\x14\x00\x08\x00rest-of-a-zip")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: this is a binary plan file" in err
    assert f"terraform show -json {path} > plan.json" in err


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8"])
def test_unreadable_files_exit_2(tmp_path, capsys, kind):
    path = tmp_path / "plan.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b'{"format_version": "1.2", "x": "\xff\xfe\xfd"}')
    code = main([str(path)])
    err = capsys.readouterr().err
    assert code == 2
    expected = {
        "missing": "cannot read the file: No such file or directory",
        "directory": "cannot read the file: Is a directory",
        "not-utf8": "not UTF-8 text",
    }[kind]
    assert f"{path}: {expected}" in err


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert "PLAN_JSON" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "--node-role-pattern" in capsys.readouterr().out
    assert main(["--node-role-pattern", "(", "x.json"]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err


def test_console_script_runs_without_traceback(tmp_path):
    (entry,) = [
        e for e in metadata.entry_points(group="console_scripts") if e.name == "sd-plan-summary"
    ]
    assert entry.value == "sdaas.plan_summary:main"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sdaas.plan_summary import main; sys.exit(main())",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"sd-plan-summary: error: {bad}: not valid JSON")


# ------------------------------------------------------------------ fixed monthly cost


def test_the_baseline_line_prices_what_the_plan_leaves(tmp_path, capsys):
    doc = plan(
        change("aws_eks_cluster.c", ["create"], after={"name": "sdaas"}),
        change("aws_eks_node_group.ng", ["update"], before={}, after={
            "instance_types": ["t4g.medium"], "scaling_config": [{"desired_size": 2}]}),
        change("aws_nat_gateway.a", ["create"], after={}),
        change("aws_nat_gateway.b", ["delete"], before={}),  # going away: not counted
        change("aws_vpc_endpoint.ecr", ["create"], after={"vpc_endpoint_type": "Interface"}),
    )
    # The endpoint's subnets are created in the same plan: known in number only.
    doc["resource_changes"][-1]["change"]["after_unknown"] = {"subnet_ids": [True] * 3}
    code, out, _ = summarise(tmp_path, capsys, doc)
    assert code == 0
    (line,) = [ln for ln in out.splitlines() if ln.startswith("**Fixed monthly baseline")]
    # 73.00 + 2 x 0.0336 x 730 + 2 x 20 GiB x 0.08 + 0.045 x 730 + 3 x 0.01 x 730
    assert "$180.01" in line
    assert "NAT gateways (1) $32.85" in line
    assert "interface endpoints (1 services, 3 zone attachments) $21.90" in line
    assert "system nodes (2 x t4g.medium, on-demand) $49.06" in line


def test_a_plan_without_billable_resources_has_no_baseline_line(tmp_path, capsys):
    _, out, _ = summarise(tmp_path, capsys, plan(change("terraform_data.x", ["create"],
                                                        after={})))
    assert "Fixed monthly baseline" not in out
