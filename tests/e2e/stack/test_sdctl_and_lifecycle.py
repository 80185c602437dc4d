"""``sdctl`` against the running local stack, and a second stack refused while it runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdaas.cli import sdctl
from sdaas.local.errors import AlreadyRunning
from sdaas.local.settings import LocalSettings
from sdaas.local.stack import LocalStack
from tests.e2e.stack.conftest import Deployed
from tests.e2e.support import REPO, reference_request

pytestmark = [pytest.mark.slow, pytest.mark.terraform, pytest.mark.emulator]


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None
         ) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = sdctl.main(argv, out=out, err=err, env=env or {}, cwd=cwd)
    return code, out.getvalue(), err.getvalue()


def _request(tmp_path: Path, task_id: str, prompt: str = "A dog") -> Path:
    body = reference_request("v1alpha2/t2i.json")
    body["task"]["metadata"]["id"] = task_id
    body["task"]["content"]["prompt"] = prompt
    path = tmp_path / f"{task_id}.json"
    path.write_text(json.dumps(body))
    return path


def test_submit_wait_downloads_the_images_from_connection_json(deployed: Deployed,
                                                               tmp_path: Path) -> None:
    """No flags, no environment: sdctl finds the stack through its connection.json."""
    request = _request(tmp_path, "sdctl-wait")
    out_dir = tmp_path / "out"
    code, out, err = _run(["--local-dir", str(deployed.stack.workdir), "submit",
                           str(request), "--wait", "--out", str(out_dir)], tmp_path)
    assert code == sdctl.EXIT_OK, err
    assert "accepted sdctl-wait (sdruntime)" in out
    saved = out_dir / "sdctl-wait" / "image-0.png"
    assert str(saved) in out
    stored = deployed.objects("output/sdctl-wait/")["output/sdctl-wait/image-0.png"]
    assert saved.read_bytes() == stored
    assert "] sdctl-wait: completed" in err  # the progress display


def test_status_and_wait_of_a_finished_task(deployed: Deployed, tmp_path: Path) -> None:
    env = {"SD_ENDPOINT": deployed.endpoint, "SD_API_KEY": deployed.api_key}
    code, out, _ = _run(["submit", str(_request(tmp_path, "sdctl-status"))], tmp_path, env)
    assert code == 0
    deployed.wait_final("sdctl-status")
    code, out, _ = _run(["status", "sdctl-status"], tmp_path, env)
    assert code == 0
    assert "completed (attempts 1)" in out
    code, out, _ = _run(["--json", "status", "sdctl-status"], tmp_path, env)
    assert json.loads(out)["images"] == deployed.status("sdctl-status")["images"]


def test_a_failed_task_exits_3_with_its_reason(deployed: Deployed, tmp_path: Path) -> None:
    body = reference_request("v1alpha2/pipeline.json")
    body["task"]["metadata"].update(id="sdctl-failed", runtime="comfyui")
    body["task"]["content"]["6"]["inputs"]["text"] = "[preview:fail]"
    request = tmp_path / "failed.json"
    request.write_text(json.dumps(body))
    env = {"SD_ENDPOINT": deployed.endpoint, "SD_API_KEY": deployed.api_key}
    code, _, err = _run(["submit", str(request), "--wait", "--out", str(tmp_path)],
                        tmp_path, env)
    assert code == sdctl.EXIT_TASK_FAILED
    assert "execution_error" in err and "PreviewFailure" in err
    assert _run(["status", "sdctl-failed"], tmp_path, env)[0] == sdctl.EXIT_TASK_FAILED


def test_a_slow_task_times_out_with_exit_4(deployed: Deployed, tmp_path: Path) -> None:
    env = {"SD_ENDPOINT": deployed.endpoint, "SD_API_KEY": deployed.api_key}
    request = _request(tmp_path, "sdctl-slow", "A dog [preview:sleep=3]")
    code, _, err = _run(["submit", str(request), "--wait", "--timeout", "0.5", "--out",
                         str(tmp_path)], tmp_path, env)
    assert code == sdctl.EXIT_TIMEOUT
    assert "sdctl wait sdctl-slow" in err
    code, _, _ = _run(["wait", "sdctl-slow", "--timeout", "60", "--out", str(tmp_path)],
                      tmp_path, env)
    assert code == sdctl.EXIT_OK
    assert (tmp_path / "sdctl-slow" / "image-0.png").exists()


def test_api_errors_exit_2_with_every_detail(deployed: Deployed, tmp_path: Path) -> None:
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"task": {"metadata": {"id": "x y", "runtime": "nope",
                                                         "tasktype": "text-to-image"}}}))
    env = {"SD_ENDPOINT": deployed.endpoint, "SD_API_KEY": deployed.api_key}
    code, _, err = _run(["submit", str(request)], tmp_path, env)
    assert code == sdctl.EXIT_CLIENT
    assert "HTTP 400" in err and "invalid_request" in err
    for path in ("task.metadata.id", "task.metadata.runtime", "task.content"):
        assert f"- {path}:" in err
    assert "request id:" in err
    code, _, err = _run(["--api-key", "wrong", "status", "e2e-t2i"], tmp_path, env)
    assert code == sdctl.EXIT_CLIENT
    assert "HTTP 403" in err and "INVALID_API_KEY" in err


def test_the_console_script_runs(deployed: Deployed, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "sdctl"
    if not script.exists():
        pytest.skip("the sdctl console script is not installed in this environment")
    proc = subprocess.run(
        [str(script), "--local-dir", str(deployed.stack.workdir), "submit",
         str(_request(tmp_path, "sdctl-script")), "--wait", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sdctl-script" / "image-0.png").exists()


def test_a_second_stack_in_the_same_directory_is_refused(deployed: Deployed) -> None:
    connection_file = deployed.stack.connection_path
    before = connection_file.read_text()
    second = LocalStack(LocalSettings(workdir=deployed.stack.workdir,
                                      config_file=deployed.stack.config_file))
    with pytest.raises(AlreadyRunning) as refused:
        second.start()
    assert deployed.endpoint in str(refused.value)
    second.stop()
    assert connection_file.read_text() == before  # the running stack is untouched
    proc = subprocess.run(
        [sys.executable, "-m", "sdaas.local", "up", "--workdir",
         str(deployed.stack.workdir)], capture_output=True, text=True, timeout=120,
        check=False, cwd=REPO)
    assert proc.returncode == 3, proc.stderr
    assert "already running" in proc.stderr and deployed.endpoint in proc.stderr
    assert deployed.get("/v1alpha2/tasks/still-serving").status_code == 404  # still serving
