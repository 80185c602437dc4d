"""sdctl against a scripted API on loopback: connection sources, errors, retries, waiting,
downloads and exit codes."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sdaas.cli import sdctl

KEY = "secret-key"
T2I = {"task": {"metadata": {"id": "t1", "runtime": "sdruntime", "tasktype": "text-to-image"},
                "content": {"prompt": "A dog"}}}
LEGACY = {"alwayson_scripts": {"task": "text-to-image", "id_task": "old1",
                               "sd_model_checkpoint": "m.safetensors"}, "prompt": "A dog"}

Answer = tuple[int, dict[str, str], bytes]


class FakeApi:
    """Answers from a script: ``routes[(method, path)]`` is a list of answers (the last
    repeats) or a function of the request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer] | Callable[[bytes], Answer]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append((self.command, self.path, dict(self.headers), body))
                script = outer.routes.get((self.command, self.path.split("?")[0]))
                if script is None:
                    status, headers, data = 404, {}, b'{"message": "Not Found"}'
                elif callable(script):
                    status, headers, data = script(body)
                else:
                    status, headers, data = script[0] if len(script) == 1 else script.pop(0)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.endpoint = f"{self.base}/prod"

    def json(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[(method, path)] = [(s, {}, json.dumps(b).encode()) for s, b in answers]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdctl.time, "sleep", lambda _s: None)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv: list[str], api: FakeApi | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), err or io.StringIO()
    base = {} if api is None else {"SD_ENDPOINT": api.endpoint, "SD_API_KEY": KEY}
    code = sdctl.main(argv, out=out, err=err, env={**base, **(env or {})},
                      cwd=cwd or Path("/nonexistent-dir"))
    return code, out.getvalue(), err.getvalue()


def record(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "t1", "runtime": "sdruntime", "tasktype": "text-to-image", "status": status,
            "attempts": 1, "images": [], "image_urls": [], "error": None, "timings": {},
            **extra}


def write(tmp_path: Path, body: Any, name: str = "req.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


# --- request files ----------------------------------------------------------------------------


def test_request_files_pick_the_api_version_and_id(tmp_path: Path) -> None:
    assert sdctl.load_request(str(write(tmp_path, T2I)), None)[::2] == ("/v1alpha2", "t1")
    path, body, task_id = sdctl.load_request(str(write(tmp_path, LEGACY)), "new")
    assert (path, task_id, body["alwayson_scripts"]["id_task"]) == ("/v1alpha1", "new", "new")
    for bad in ([1, 2], {"prompt": "x"}):
        with pytest.raises(sdctl.CliError) as refused:
            sdctl.load_request(str(write(tmp_path, bad)), None)
        assert refused.value.code == sdctl.EXIT_CLIENT
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(sdctl.CliError, match="is not JSON"):
        sdctl.load_request(str(tmp_path / "broken.json"), None)
    with pytest.raises(sdctl.CliError, match="cannot read"):
        sdctl.load_request(str(tmp_path / "missing.json"), None)


# --- where the API is ---------------------------------------------------------------------------


def test_no_endpoint_anywhere_is_a_client_error_with_the_options() -> None:
    code, _, err = run(["status", "t1"])
    assert code == sdctl.EXIT_CLIENT
    assert "SD_ENDPOINT" in err and "make local" in err and "--stack-dir" in err


def test_flags_beat_environment_beat_local_stack(api: FakeApi, tmp_path: Path) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("queued")))
    local = tmp_path / ".local"
    local.mkdir()
    (local / "connection.json").write_text(json.dumps(
        {"endpoint": "http://127.0.0.1:9/prod", "api_key": "local-key", "pid": os.getpid()}))
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    args = sdctl.parser().parse_args(["status", "t1"])
    found = sdctl.resolve_connection(args, {}, nested)  # found from a subdirectory
    assert (found.endpoint, found.api_key) == ("http://127.0.0.1:9/prod", "local-key")
    found = sdctl.resolve_connection(args, {"SD_ENDPOINT": api.endpoint, "SD_API_KEY": "e"},
                                     nested)
    assert (found.endpoint, found.api_key) == (api.endpoint, "e")
    args = sdctl.parser().parse_args(["--endpoint", api.endpoint + "/", "--api-key", KEY,
                                      "status", "t1"])
    found = sdctl.resolve_connection(args, {"SD_API_KEY": "e"}, nested)
    assert (found.endpoint, found.api_key) == (api.endpoint, KEY)


def test_a_stale_connection_file_is_ignored_and_said(tmp_path: Path) -> None:
    local = tmp_path / ".local"
    local.mkdir()
    (local / "connection.json").write_text(json.dumps(
        {"endpoint": "http://127.0.0.1:9/prod", "api_key": "k", "pid": 2**22 + 12345}))
    code, _, err = run(["status", "t1"], cwd=tmp_path)
    assert code == sdctl.EXIT_CLIENT
    assert "stale" in err and "is not running" in err


def test_terraform_outputs_of_a_deployed_stack(api: FakeApi, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("running")))
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "cdk.tf.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "terraform"
    outputs = {"api_endpoint": {"value": api.endpoint}, "api_key_value": {"value": KEY,
                                                                         "sensitive": True}}
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(outputs)}\nEOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, out, _ = run(["--stack-dir", str(stack), "status", "t1"])
    assert code == sdctl.EXIT_OK
    assert "running" in out
    assert api.seen[-1][2]["x-api-key"] == KEY


# --- errors and retries ---------------------------------------------------------------------------


def test_api_errors_show_every_detail_and_exit_2(api: FakeApi, tmp_path: Path) -> None:
    error = {"error": {"code": "invalid_request", "message": "the request has 2 problems",
                       "details": [{"path": "task.metadata.id", "message": "bad id"},
                                   {"path": "task.content", "message": "is required"}]}}
    api.routes[("POST", "/prod/v1alpha2")] = [
        (400, {"x-amzn-RequestId": "req-1"}, json.dumps(error).encode())]
    code, _, err = run(["submit", str(write(tmp_path, T2I))], api)
    assert code == sdctl.EXIT_CLIENT
    assert "HTTP 400 Bad Request invalid_request: the request has 2 problems" in err
    assert "  - task.metadata.id: bad id" in err
    assert "  - task.content: is required" in err
    assert "request id: req-1" in err
    assert json.loads(api.seen[0][3]) == T2I
    assert api.seen[0][2]["x-api-key"] == KEY


def test_api_gateway_message_shape_and_plain_text(api: FakeApi) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (403, {"message": "Forbidden"}))
    code, _, err = run(["status", "t1"], api)
    assert code == sdctl.EXIT_CLIENT and "HTTP 403 Forbidden: Forbidden" in err
    api.routes[("GET", "/prod/v1alpha2/tasks/t1")] = [(500, {"Content-Type": "text/plain"},
                                                       b"upstream exploded")]
    code, _, err = run(["status", "t1"], api)
    assert code == sdctl.EXIT_SERVER and "upstream exploded" in err


def test_submit_retries_throttling_and_unavailability(api: FakeApi, tmp_path: Path) -> None:
    accepted = {"id": "t1", "runtime": "sdruntime", "output_location": "s3://b/output/t1"}
    api.routes[("POST", "/prod/v1alpha2")] = [
        (503, {"Retry-After": "1"}, b'{"error": {"code": "publish_failed", "message": "x"}}'),
        (429, {}, b'{"message": "Too Many Requests"}'),
        (202, {}, json.dumps(accepted).encode())]
    code, out, err = run(["submit", str(write(tmp_path, T2I))], api)
    assert code == sdctl.EXIT_OK, err
    assert "accepted t1 (sdruntime) -> s3://b/output/t1" in out
    assert err.count("retrying") == 2
    assert len(api.seen) == 3 and len({s[3] for s in api.seen}) == 1  # the same body


def test_a_persistent_server_error_exits_5(api: FakeApi) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (503, {"error": {"code": "task_table_failed",
                                                                "message": "retry"}}))
    code, _, err = run(["status", "t1"], api)
    assert code == sdctl.EXIT_SERVER
    assert "task_table_failed" in err
    assert len(api.seen) == sdctl.ATTEMPTS


def test_an_unreachable_api_exits_5() -> None:
    code, _, err = run(["status", "t1"], env={"SD_ENDPOINT": "http://127.0.0.1:9/prod",
                                              "SD_API_KEY": "k"})
    assert code == sdctl.EXIT_SERVER
    assert "cannot reach http://127.0.0.1:9/prod/v1alpha2/tasks/t1" in err
    # Tried ATTEMPTS times in all, each retry said with its reason.
    retries = [line for line in err.splitlines() if "retrying" in line]
    assert len(retries) == sdctl.ATTEMPTS - 1
    assert all("GET /prod/v1alpha2/tasks/t1: NewConnectionError" in line for line in retries)


def test_retry_waits_follow_retry_after_up_to_a_cap(api: FakeApi, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(sdctl.time, "sleep", waits.append)
    accepted = {"id": "t1", "runtime": "sdruntime", "output_location": "s3://b/output/t1"}
    api.routes[("POST", "/prod/v1alpha2")] = [
        (429, {"Retry-After": "3600"}, b'{"message": "Too Many Requests"}'),
        (503, {"Retry-After": "soon"}, b'{"message": "unavailable"}'),  # unreadable
        (202, {}, json.dumps(accepted).encode())]
    code, _, err = run(["submit", str(write(tmp_path, T2I))], api)
    assert code == sdctl.EXIT_OK, err
    # An hour asked for is capped; an unreadable header falls back to the backoff (the
    # second retry's: twice the factor).
    assert waits == [sdctl.MAX_RETRY_AFTER, 2 * sdctl.BACKOFF_SECONDS]
    assert "HTTP 429; retrying in 10s" in err and "HTTP 503; retrying in 2s" in err


def test_a_client_error_is_not_sent_again(api: FakeApi, tmp_path: Path) -> None:
    api.json("POST", "/prod/v1alpha2", (400, {"error": {"code": "invalid_request",
                                                        "message": "bad", "details": []}}))
    code, _, err = run(["submit", str(write(tmp_path, T2I))], api)
    assert code == sdctl.EXIT_CLIENT
    assert len(api.seen) == 1 and "retrying" not in err


# --- waiting and downloading ----------------------------------------------------------------


def _completed(api: FakeApi) -> dict[str, Any]:
    api.routes[("GET", "/files/image-0.png")] = [(200, {"Content-Type": "image/png"}, b"PNG0")]
    api.routes[("GET", "/files/image-1.jpeg")] = [(200, {"Content-Type": "image/jpeg"},
                                                   b"JPG1")]
    return record("completed", images=["s3://b/output/t1/image-0.png",
                                       "s3://b/output/t1/image-1.jpeg"],
                  image_urls=[f"{api.base}/files/image-0.png?X-Amz-Signature=x",
                              f"{api.base}/files/image-1.jpeg?X-Amz-Signature=y"],
                  timings={"queue_wait": 0.5, "inference": 2.0, "total": 3.25})


def test_submit_wait_follows_the_task_and_downloads(api: FakeApi, tmp_path: Path) -> None:
    api.json("POST", "/prod/v1alpha2", (202, {"id": "t1", "runtime": "sdruntime",
                                              "output_location": "s3://b/output/t1"}))
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("queued")),
             (200, record("queued")), (200, record("running")), (200, _completed(api)))
    code, out, err = run(["submit", str(write(tmp_path, T2I)), "--wait", "--out",
                          str(tmp_path / "out")], api)
    assert code == sdctl.EXIT_OK, err
    assert (tmp_path / "out" / "t1" / "image-0.png").read_bytes() == b"PNG0"
    assert (tmp_path / "out" / "t1" / "image-1.jpeg").read_bytes() == b"JPG1"
    assert str(tmp_path / "out" / "t1" / "image-1.jpeg") in out
    lines = [line for line in err.splitlines() if "t1:" in line]
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["queued", "running", "completed"]
    assert "inference 2.00s" in err
    downloads = [s for s in api.seen if s[1].startswith("/files/")]
    assert all("x-api-key" not in {k.lower() for k in s[2]} for s in downloads)


def test_the_terminal_display_rewrites_one_line(api: FakeApi, tmp_path: Path) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("queued")),
             (200, record("running", attempts=2)), (200, _completed(api)))
    err = Tty()
    code, _, _ = run(["wait", "t1", "--out", str(tmp_path)], api, err=err)
    assert code == sdctl.EXIT_OK
    shown = err.getvalue()
    assert "\r\033[K" in shown
    assert "t1: queued -> running (attempt 2)" in shown
    assert "queued -> running -> completed" in shown


def test_a_failed_task_exits_3_with_the_reason(api: FakeApi, tmp_path: Path) -> None:
    failure = {"code": "runtime_error", "message": "HTTP 500: CUDA out of memory",
               "details": [{"node_id": "3"}]}
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("failed", attempts=3,
                                                            error=failure)))
    code, _, err = run(["wait", "t1", "--out", str(tmp_path)], api)
    assert code == sdctl.EXIT_TASK_FAILED
    assert "failed after 3 attempt(s): runtime_error: HTTP 500: CUDA out of memory" in err
    assert '"node_id": "3"' in err
    assert run(["status", "t1"], api)[0] == sdctl.EXIT_TASK_FAILED


def test_waiting_too_long_exits_4_and_says_how_to_resume(api: FakeApi, tmp_path: Path) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("running")))
    code, _, err = run(["wait", "t1", "--timeout", "0", "--out", str(tmp_path)], api)
    assert code == sdctl.EXIT_TIMEOUT
    assert "still running" in err and "sdctl wait t1" in err


def test_an_unknown_task_is_a_client_error(api: FakeApi) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/zz", (404, {"error": {
        "code": "not_found", "message": "no task with id 'zz'", "details": []}}))
    code, _, err = run(["wait", "zz"], api)
    assert code == sdctl.EXIT_CLIENT and "no task with id 'zz'" in err


def test_json_output(api: FakeApi, tmp_path: Path) -> None:
    api.json("POST", "/prod/v1alpha1", (200, {"id_task": "old1",
                                              "sd_model_checkpoint": "m.safetensors",
                                              "output_location": "s3://b/output/old1"}))
    code, out, _ = run(["--json", "submit", str(write(tmp_path, LEGACY))], api)
    assert code == sdctl.EXIT_OK
    assert json.loads(out)["id_task"] == "old1"
    assert api.seen[-1][1] == "/prod/v1alpha1"


def test_a_download_is_tried_again_on_a_server_error(api: FakeApi, tmp_path: Path) -> None:
    done = _completed(api)
    api.routes[("GET", "/files/image-0.png")] = [(503, {}, b"<Error>SlowDown</Error>"),
                                                 (200, {}, b"PNG0")]
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, done))
    code, _, err = run(["wait", "t1", "--out", str(tmp_path)], api)
    assert code == sdctl.EXIT_OK, err
    assert (tmp_path / "t1" / "image-0.png").read_bytes() == b"PNG0"
    assert "GET /files/image-0.png: HTTP 503; retrying" in err
    assert "X-Amz-Signature" not in err  # the signature is not printed
    downloads = [s for s in api.seen if s[1].startswith("/files/image-0.png")]
    assert len(downloads) == 2


def test_an_expired_image_url_is_reported(api: FakeApi, tmp_path: Path) -> None:
    done = _completed(api)
    api.routes[("GET", "/files/image-0.png")] = [(403, {}, b"<Error>Request has expired"
                                                          b"</Error>")]
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, done))
    code, _, err = run(["wait", "t1", "--out", str(tmp_path)], api)
    assert code == sdctl.EXIT_SERVER
    assert "cannot download" in err and "Request has expired" in err
    assert "X-Amz-Signature" not in err  # the signature is not printed
    assert "retrying" not in err  # an expired URL is not asked again


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_posts_to_the_tasks_cancel_path(api: FakeApi) -> None:
    api.json("POST", "/prod/v1alpha2/tasks/a%2Fb/cancel", (202, record("cancelled", id="a/b")))
    code, out, _ = run(["cancel", "a/b"], api)
    assert code == sdctl.EXIT_OK and out == "cancelled a/b\n"
    method, path, headers, _ = api.seen[-1]
    assert (method, path, headers["x-api-key"]) == ("POST", "/prod/v1alpha2/tasks/a%2Fb/cancel",
                                                    KEY)
    code, out, _ = run(["--json", "cancel", "a/b"], api)
    assert code == sdctl.EXIT_OK and json.loads(out)["status"] == "cancelled"


def test_cancelling_a_final_task_is_a_client_error_naming_its_status(api: FakeApi) -> None:
    api.json("POST", "/prod/v1alpha2/tasks/t1/cancel", (409, {"error": {
        "code": "task_final", "message": "task 't1' is already completed; only a queued or "
        "running task can be cancelled", "details": [{"path": "status", "message": "completed"}]}}))
    code, _, err = run(["cancel", "t1"], api)
    assert code == sdctl.EXIT_CLIENT
    assert "409" in err and "task_final" in err and "status: completed" in err
    assert len(api.seen) == 1  # a 409 is not sent again


def test_cancel_is_sent_again_when_the_api_is_briefly_unavailable(api: FakeApi) -> None:
    api.json("POST", "/prod/v1alpha2/tasks/t1/cancel",
             (503, {"error": {"code": "task_table_failed", "message": "retry", "details": []}}),
             (202, record("cancelled")))
    code, _, err = run(["cancel", "t1"], api)
    assert code == sdctl.EXIT_OK and len(api.seen) == 2 and "503" in err


def test_a_cancelled_task_ends_wait_and_status_with_exit_6(api: FakeApi, tmp_path: Path) -> None:
    api.json("GET", "/prod/v1alpha2/tasks/t1", (200, record("running")),
             (200, record("cancelled")))
    err = io.StringIO()
    code, _, _ = run(["wait", "t1", "--out", str(tmp_path)], api, err=err)
    assert code == sdctl.EXIT_TASK_CANCELLED
    assert "t1: running" in err.getvalue() and "t1: cancelled" in err.getvalue()
    assert "task t1 was cancelled" in err.getvalue()
    assert not (tmp_path / "t1").exists()
    code, out, _ = run(["status", "t1"], api)
    assert code == sdctl.EXIT_TASK_CANCELLED and "cancelled" in out
