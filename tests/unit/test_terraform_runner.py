"""The Terraform runner and outputs reader (sdaas.terraform) against a scripted stand-in for
the binary: what they pass, stream, log, report and end. The real binary is exercised by
tests/terraform and the local stack."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sdaas import terraform
from tests.e2e.support import pid_alive, wait_for


def fake_binary(tmp_path: Path, script: str) -> str:
    """An executable ``terraform`` running ``script`` (Python) with its arguments."""
    path = tmp_path / "bin" / "terraform"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_command_streams_logs_and_keeps_stderr_apart(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, (
        "print('argv', *sys.argv[1:], flush=True)\n"
        "print('automation', os.environ['TF_IN_AUTOMATION'], os.environ['TF_INPUT'],"
        " flush=True)\n"
        "print('a warning', file=sys.stderr, flush=True)\n"
        "print('done', flush=True)"))
    log = tmp_path / "terraform.log"
    lines: list[str] = []
    tf = terraform.Terraform(tmp_path, binary=binary, env={"PATH": os.environ["PATH"]},
                             log_path=log)
    result = tf.run("plan", "-input=false", on_line=lines.append)
    assert lines == ["argv plan -input=false -no-color", "automation 1 0", "done"]
    assert result.stdout.splitlines() == lines and result.stderr == "a warning\n"
    assert log.read_text().splitlines() == ["$ terraform plan -input=false", *lines,
                                            "a warning"]
    merged = tf.run("plan", merge_stderr=True)
    assert "a warning" in merged.stdout and merged.stderr == ""


def test_a_failure_says_the_command_exit_status_and_last_lines(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, (
        "for i in range(100): print('line', i)\n"
        "print('Error: no valid credential sources', file=sys.stderr)\n"
        "sys.exit(1)"))
    tf = terraform.Terraform(tmp_path, binary=binary, log_path=tmp_path / "tf.log")
    with pytest.raises(terraform.TerraformError) as failed:
        tf.run("apply", "-auto-approve")
    message = str(failed.value)
    assert message.startswith("terraform apply -auto-approve failed (exit 1). Last lines of "
                              f"{tmp_path / 'tf.log'}:")
    assert "line 99" in message and "no valid credential sources" in message
    assert "line 50" not in message  # only the tail
    assert tf.run("apply", check=False).returncode == 1


class ManualTimer:
    """A timer that goes off when the test says (no wall clock involved)."""

    def __init__(self, seconds: float, function: Callable[[], None]) -> None:
        self.seconds, self.function = seconds, function
        self.started = self.cancelled = False

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True


def test_running_out_of_time_ends_the_whole_process_group(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, (
        "import subprocess\n"
        "plugin = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(plugin.pid, flush=True)\n"
        "time.sleep(60)"))
    timers: list[ManualTimer] = []

    def timer(seconds: float, function: Callable[[], None]) -> ManualTimer:
        timers.append(ManualTimer(seconds, function))
        return timers[-1]

    pids: list[str] = []

    def on_line(line: str) -> None:
        pids.append(line)
        timers[0].function()  # the plugin runs: time is up now

    tf = terraform.Terraform(tmp_path, binary=binary, timer=timer)
    with pytest.raises(terraform.TerraformError, match="terraform apply took more than 90s"):
        tf.run("apply", timeout=90, on_line=on_line)
    assert timers[0].seconds == 90 and timers[0].started and timers[0].cancelled
    (plugin,) = pids
    wait_for(lambda: not pid_alive(int(plugin)), 10, "the provider plugin to end")


def test_a_missing_binary_or_mirror_is_named() -> None:
    with pytest.raises(terraform.TerraformError, match="terraform is not on the PATH"):
        terraform.Terraform(Path(), binary="no-such-terraform-binary")
    with pytest.raises(terraform.TerraformError,
                       match=r"holds no registry\.terraform\.io/hashicorp/aws provider"):
        terraform.check_mirror(Path("/nonexistent-mirror"))


def test_a_cli_configuration_that_does_not_exist_is_dropped() -> None:
    env = terraform.automation_environment({"TF_CLI_CONFIG_FILE": "/nonexistent.tfrc",
                                            "HOME": "a-home-dir"})
    assert env == {"HOME": "a-home-dir", **terraform.AUTOMATION_ENV}
    kept = terraform.automation_environment({"TF_CLI_CONFIG_FILE": os.devnull})
    assert kept["TF_CLI_CONFIG_FILE"] == os.devnull


OUTPUTS = {"api_endpoint": {"value": "https://api.example/prod", "type": "string",
                            "sensitive": False},
           "queue_urls": {"value": {"a": "q"}, "type": ["map", "string"], "sensitive": False}}


def test_outputs_are_read_as_values(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, (
        "args = sys.argv[1:]\n"
        f"assert args[0] == '-chdir={tmp_path}' and args[1:4] == ['output', '-no-color',"
        " '-json'], args\n"
        f"print({json.dumps(OUTPUTS)!r} if len(args) == 4 else '\"sdaas-models\"')"))
    assert terraform.read_outputs(tmp_path, binary=binary) == {
        "api_endpoint": "https://api.example/prod", "queue_urls": {"a": "q"}}
    assert terraform.read_output(tmp_path, "model_bucket", binary=binary) == "sdaas-models"


@pytest.mark.parametrize(("script", "expected"), [
    ("print('\\u2577 Error: No outputs found', file=sys.stderr); sys.exit(1)",
     "cannot read the model_bucket output in .* \\(has the stack been applied\\?\\): "
     "\u2577 Error: No outputs found$"),
    ("print('not json')", "terraform output in .* is not JSON: 'not json"),
])
def test_outputs_that_cannot_be_read_say_why(tmp_path: Path, script: str,
                                             expected: str) -> None:
    binary = fake_binary(tmp_path, script)
    with pytest.raises(terraform.TerraformError, match=expected):
        terraform.read_output(tmp_path, "model_bucket", binary=binary)


def test_outputs_without_terraform_installed(tmp_path: Path) -> None:
    with pytest.raises(terraform.TerraformError, match="terraform is not installed"):
        terraform.read_outputs(tmp_path, binary=str(tmp_path / "absent"))


def test_outputs_that_hang_are_given_up(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "time.sleep(30)")
    with pytest.raises(terraform.TerraformError, match="did not answer within 1 s"):
        terraform.read_outputs(tmp_path, binary=binary, timeout=1)


def test_the_runner_reads_outputs_with_its_own_binary_and_environment(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, (
        "print('{\"marker\": {\"value\": \"%s\"}}' % os.environ.get('MARKER'))"))
    tf = terraform.Terraform(tmp_path, binary=binary, env={"MARKER": "from-the-runner"})
    assert tf.outputs() == {"marker": "from-the-runner"}


def test_init_uses_the_mirror_and_can_skip_the_backend(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    binary = fake_binary(tmp_path, (
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')"))
    tf = terraform.Terraform(tmp_path, binary=binary, plugin_dir=tmp_path / "mirror")
    tf.init()
    tf.init(backend=False)
    mirror = f"-plugin-dir={tmp_path / 'mirror'}"
    assert calls.read_text().splitlines() == [
        f"init -input=false {mirror} -no-color",
        f"init -input=false {mirror} -backend=false -no-color"]
