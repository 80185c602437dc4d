"""``sdctl``: submit image-generation tasks, follow them, download their images.

::

    sdctl submit request.json [--wait] [--out DIR] [--id ID]
    sdctl status ID
    sdctl wait ID [--out DIR]
    sdctl cancel ID
    sdctl dlq list RUNTIME | sdctl dlq redrive RUNTIME [--id ID ...]   (sdaas.cli.dlq)

``submit`` sends a JSON request file (``-`` reads standard input): a v1alpha2 body
(``{"task": {"metadata": ..., "content": ...}}``) goes to ``POST /v1alpha2``, a legacy
v1alpha1 body (``alwayson_scripts.task`` ...) to ``POST /v1alpha1``. With ``--wait`` it then
follows the task like ``wait``: a progress display (queued, running, completed, elapsed
time) on standard error, and the images downloaded through their presigned URLs into
``DIR/<id>/`` (default ``./sd-outputs``). Submitting is idempotent, so a request that failed
on a network error or a 429/502/503/504 is sent again (at most 3 attempts, honouring
``Retry-After`` up to 10 s); an image download is tried again on a network error or a 5xx.
Each retry is said on standard error, with its reason.

``cancel`` cancels a task that is queued or running (``POST /v1alpha2/tasks/{id}/cancel``):
it is never run, or interrupted in its runtime, and ends ``cancelled``. Cancelling a task that
is already cancelled succeeds again; a task that already completed or failed cannot be
cancelled (HTTP 409, exit 2).

Where the API is (the first that answers, per value):

1. ``--endpoint`` and ``--api-key``;
2. ``SD_ENDPOINT`` and ``SD_API_KEY``;
3. ``--stack-dir DIR``: the Terraform outputs of a deployed stack (``api_endpoint``,
   ``api_key_value``);
4. a running ``make local``: ``.local/connection.json`` in this directory or a parent
   (``--local-dir``/``SD_LOCAL_DIR`` names another directory);
5. the Terraform outputs in ``cdktf.out/stacks/<name>`` (``name`` from the configuration).

Exit status:

== ==========================================================================
0  success: accepted (without ``--wait``), completed, cancelled by ``cancel``, or status shown
1  an unexpected error in sdctl itself
2  a client error: bad arguments or request file, no endpoint, HTTP 4xx
3  the task failed (``status`` too, for a failed task)
4  timed out waiting (the task, or a message move task, goes on; ``sdctl wait ID`` resumes)
5  a server error (HTTP 5xx) or the API, or an image URL, is unreachable
6  the task was cancelled (``wait`` and ``status``; ``cancel`` exits 0)
130 interrupted (Ctrl-C)
== ==========================================================================
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from sdaas.terraform import TerraformError, read_outputs
from task_contract.record import CANCELLED, FAILED, FINAL_STATUSES

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CLIENT = 2
EXIT_TASK_FAILED = 3
EXIT_TIMEOUT = 4
EXIT_SERVER = 5
EXIT_TASK_CANCELLED = 6
EXIT_INTERRUPTED = 130

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 35.0  # above API Gateway's 29 s integration timeout
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0  # urllib3 backoff factor: the second retry waits 2 s, a third 4 s
RETRY_STATUSES = (429, 502, 503, 504)  # throttled, or the API briefly unavailable
SERVER_ERRORS = tuple(range(500, 600))  # a download's storage failing for a moment
MAX_RETRY_AFTER = 10.0
FINAL = FINAL_STATUSES
DEFAULT_OUT = "sd-outputs"


class CliError(Exception):
    """Ends the command with ``code`` after printing ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- where the API is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    endpoint: str
    api_key: str
    source: str


def _local_connection(local_dir: str | None, cwd: Path) -> tuple[dict[str, Any] | None, str]:
    """``connection.json`` of a running local stack, and a note when one was skipped."""
    if local_dir:
        candidates = [Path(local_dir) / "connection.json"]
    else:
        candidates = [p / ".local" / "connection.json" for p in (cwd, *cwd.parents)]
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            return None, f"{path} is unreadable ({exc})"
        pid = data.get("pid") if isinstance(data, dict) else None
        if isinstance(pid, int):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None, f"{path} is stale: its local stack (pid {pid}) is not running"
            except PermissionError:
                pass
        if isinstance(data, dict) and data.get("endpoint"):
            return {**data, "_source": str(path)}, ""
    return None, ""


def _terraform_outputs(stack_dir: Path) -> tuple[dict[str, Any] | None, str]:
    if not (stack_dir / "cdk.tf.json").exists() and not any(stack_dir.glob("*.tfstate")):
        return None, ""
    try:
        values = read_outputs(stack_dir)
    except TerraformError as exc:
        return None, str(exc)
    if not values.get("api_endpoint"):
        return None, f"{stack_dir} has no api_endpoint output (not applied yet?)"
    return {"endpoint": values["api_endpoint"], "api_key": values.get("api_key_value"),
            "_source": f"terraform outputs in {stack_dir}"}, ""


def _default_stack_dir(cwd: Path) -> Path | None:
    try:
        from sdaas.config import ConfigError, load_config  # noqa: PLC0415

        name = load_config().name
    except (ImportError, ConfigError, OSError):
        return None
    return cwd / "cdktf.out" / "stacks" / name


def resolve_connection(args: argparse.Namespace, env: Mapping[str, str],
                       cwd: Path) -> Connection:
    """Endpoint and key from flags, environment, or one discovered stack (see the module)."""
    endpoint = args.endpoint or env.get("SD_ENDPOINT")
    api_key = args.api_key or env.get("SD_API_KEY")
    source = "flags/environment"
    notes: list[str] = []
    if not (endpoint and api_key):
        found: dict[str, Any] | None = None
        if args.stack_dir:
            found, note = _terraform_outputs(Path(args.stack_dir))
            notes.append(note or f"{args.stack_dir} has no Terraform outputs")
        else:
            found, note = _local_connection(args.local_dir or env.get("SD_LOCAL_DIR"), cwd)
            notes.append(note)
            if found is None:
                stack_dir = _default_stack_dir(cwd)
                if stack_dir is not None:
                    found, note = _terraform_outputs(stack_dir)
                    notes.append(note)
        if found is not None:
            endpoint = endpoint or found.get("endpoint")
            api_key = api_key or found.get("api_key")
            source = found["_source"]
    if not endpoint:
        hint = "; ".join(n for n in notes if n)
        raise CliError(EXIT_CLIENT, "no API endpoint: pass --endpoint and --api-key, set "
                                    "SD_ENDPOINT and SD_API_KEY, start `make local`, or point "
                                    "--stack-dir at a deployed stack" + (f" ({hint})" if hint
                                                                         else ""))
    if not api_key:
        raise CliError(EXIT_CLIENT, f"no API key for {endpoint}: pass --api-key or set "
                                    "SD_API_KEY (`terraform output -raw api_key_value` prints "
                                    "a deployed stack's key)")
    return Connection(str(endpoint).rstrip("/"), str(api_key), source)


# --- HTTP -------------------------------------------------------------------------------------


def describe_error(response: requests.Response) -> str:
    """Every detail the API returned about a failed request, for a person."""
    lines = [f"HTTP {response.status_code} {response.reason or ''}".rstrip()]
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        lines[0] += f" {code}: {message}" if code else f": {message}"
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and {"path", "message"} <= set(detail):
                extra = {k: v for k, v in detail.items() if k not in ("path", "message")}
                lines.append(f"  - {detail['path']}: {detail['message']}"
                             + (f" {json.dumps(extra)}" if extra else ""))
            else:
                lines.append(f"  - {json.dumps(detail) if not isinstance(detail, str) else detail}")
        for key, value in error.items():
            if key not in ("code", "message", "details"):
                lines.append(f"  {key}: {json.dumps(value)}")
        for key, value in body.items():
            if key != "error":
                lines.append(f"  {key}: {json.dumps(value)}")
    elif isinstance(body, dict) and "message" in body:  # API Gateway's own shape
        lines[0] += f": {body['message']}"
        for key, value in body.items():
            if key != "message":
                lines.append(f"  {key}: {json.dumps(value)}")
    elif body is not None:
        lines.append(f"  {json.dumps(body)}")
    elif response.text:
        lines.append("  " + response.text[:2000])
    for header in ("Retry-After", "Allow", "x-amzn-ErrorType"):
        if response.headers.get(header):
            lines.append(f"  {header}: {response.headers[header]}")
    request_id = response.headers.get("x-amzn-RequestId") or response.headers.get(
        "x-amz-apigw-id")
    if request_id:
        lines.append(f"  request id: {request_id}")
    return "\n".join(lines)


class SayingRetry(Retry):
    """urllib3's :class:`Retry` that says each retry, and why, before it waits."""

    def __init__(self, *args: Any, say: Callable[[str], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.say = say

    def new(self, **kw: Any) -> SayingRetry:
        retry = super().new(**kw)
        retry.say = self.say
        return retry

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            return super().parse_retry_after(retry_after)
        except InvalidHeader:
            return 0.0  # unreadable: the backoff applies

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: TracebackType | None = None) -> SayingRetry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.say is not None:
            waited = retry.get_retry_after(response) if (
                response is not None and self.respect_retry_after_header) else None
            delay = waited or retry.get_backoff_time()
            reason = (f"HTTP {response.status}" if response is not None
                      else f"{type(error).__name__}: {error}")
            path = (url or "").split("?", 1)[0]  # never a presigned URL's signature
            self.say(f"sdctl: {method} {path}: {reason}; retrying in {delay:.0f}s")
        return retry


def retrying_session(err: IO[str], *, statuses: Collection[int],
                     methods: Collection[str] | None) -> requests.Session:
    """A session that sends a request again, at most ``ATTEMPTS`` times in all, on a network
    error or one of ``statuses`` (``methods``: the verbs safe to repeat, ``None`` for all),
    then hands back the last answer."""
    retry = SayingRetry(total=ATTEMPTS - 1, status_forcelist=statuses,
                        allowed_methods=None if methods is None else frozenset(methods),
                        backoff_factor=BACKOFF_SECONDS, respect_retry_after_header=True,
                        retry_after_max=MAX_RETRY_AFTER, raise_on_status=False,
                        say=lambda line: print(line, file=err))
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Api:
    """The task API, every request sent again on throttling, unavailability or a network
    error: submitting is idempotent (the same id and body return the original acceptance),
    and reading a status changes nothing."""

    def __init__(self, connection: Connection, err: IO[str]) -> None:
        self.connection = connection
        self.session = retrying_session(err, statuses=RETRY_STATUSES, methods=None)
        self.session.headers.update({"x-api-key": connection.api_key,
                                     "User-Agent": "sdctl/0.1"})
        self.err = err

    def request(self, method: str, path: str, body: bytes | None = None) -> requests.Response:
        url = f"{self.connection.endpoint}{path}"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            return self.session.request(method, url, data=body, headers=headers,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as exc:
            raise CliError(EXIT_SERVER, f"cannot reach {url} ({type(exc).__name__}: {exc}); "
                                        f"source: {self.connection.source}") from None

    def status(self, task_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1alpha2/tasks/{quote(task_id, safe='')}")
        return _json_or_raise(response)

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancelling is idempotent too: a repeated request answers as the first."""
        response = self.request("POST", f"/v1alpha2/tasks/{quote(task_id, safe='')}/cancel")
        return _json_or_raise(response)


def _json_or_raise(response: requests.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        code = EXIT_SERVER if response.status_code >= 500 else EXIT_CLIENT
        raise CliError(code, describe_error(response))
    try:
        body = response.json()
    except ValueError:
        raise CliError(EXIT_SERVER, f"HTTP {response.status_code}: the answer is not JSON: "
                                    f"{response.text[:500]}") from None
    if not isinstance(body, dict):
        raise CliError(EXIT_SERVER, f"HTTP {response.status_code}: unexpected answer {body!r}")
    return body


# --- commands -----------------------------------------------------------------------------------


def load_request(path: str, task_id: str | None) -> tuple[str, dict[str, Any], str]:
    """(API path, body, task id) of a request file, ``-`` for standard input."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(EXIT_CLIENT, f"cannot read {path}: {exc.strerror}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CliError(EXIT_CLIENT, f"{path} is not JSON: {exc}") from None
    if isinstance(body, dict) and isinstance(body.get("task"), dict):
        metadata = body["task"].get("metadata")
        if task_id is not None:
            if not isinstance(metadata, dict):
                raise CliError(EXIT_CLIENT, f"{path}: task.metadata is not an object")
            metadata["id"] = task_id
        found = metadata.get("id") if isinstance(metadata, dict) else None
        return "/v1alpha2", body, str(found) if found is not None else ""
    if isinstance(body, dict) and isinstance(body.get("alwayson_scripts"), dict):
        scripts = body["alwayson_scripts"]
        if task_id is not None:
            scripts["id_task"] = task_id
        found = scripts.get("id_task")
        return "/v1alpha1", body, str(found) if found is not None else ""
    raise CliError(EXIT_CLIENT, f"{path} is neither a v1alpha2 request "
                                '({"task": {"metadata": ..., "content": ...}}) nor a v1alpha1 '
                                'one ({"alwayson_scripts": {"task": ..., "id_task": ...}, ...})')


class Display:
    """Status changes on ``err``: a live line on a terminal, one line per change otherwise."""

    def __init__(self, err: IO[str], task_id: str) -> None:
        self.err = err
        self.task_id = task_id
        self.tty = bool(getattr(err, "isatty", lambda: False)())
        self.trail: list[str] = []
        self.started = time.monotonic()

    def show(self, status: str, record: dict[str, Any]) -> None:
        elapsed = time.monotonic() - self.started
        changed = not self.trail or self.trail[-1] != status
        if changed:
            self.trail.append(status)
        attempts = record.get("attempts")
        retry = f" (attempt {attempts})" if isinstance(attempts, int) and attempts > 1 else ""
        if self.tty:
            line = f"{self.task_id}: {' -> '.join(self.trail)}{retry}  {elapsed:5.1f}s"
            end = "\n" if status in FINAL else ""
            self.err.write(f"\r\033[K{line}{end}")
            self.err.flush()
        elif changed:
            self.err.write(f"[{elapsed:6.1f}s] {self.task_id}: {status}{retry}\n")
            self.err.flush()

    def close(self) -> None:
        if self.tty and self.trail and self.trail[-1] not in FINAL:
            self.err.write("\n")
            self.err.flush()


def _timings(record: dict[str, Any]) -> str:
    timings = record.get("timings") or {}
    return ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()
                     if isinstance(v, (int, float)))


def _failure(record: dict[str, Any]) -> str:
    error = record.get("error") or {}
    lines = [f"task {record.get('id')} failed after {record.get('attempts')} attempt(s): "
             f"{error.get('code', 'error')}: {error.get('message', '(no message)')}"]
    details = error.get("details")
    if details:
        lines.append("  details: " + json.dumps(details, indent=2).replace("\n", "\n  "))
    return "\n".join(lines)


def download(record: dict[str, Any], out: Path, out_stream: IO[str],
             err: IO[str]) -> list[Path]:
    """Save the task's images (through ``image_urls``) in ``out/<id>/``."""
    urls = record.get("image_urls") or []
    images = record.get("images") or []
    if len(urls) < len(images):
        print(f"sdctl: {len(images) - len(urls)} image(s) are outside the output bucket and "
              "have no download URL", file=err)
    directory = out / str(record.get("id"))
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    # Presigned URLs carry their own authorization: no API key goes with them.
    session = retrying_session(err, statuses=SERVER_ERRORS, methods={"GET"})
    for index, url in enumerate(urls):
        name = Path(urlsplit(images[index]).path).name if index < len(images) else ""
        target = directory / (name or f"image-{index}")
        data = _fetch(session, url)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
        saved.append(target)
        print(str(target), file=out_stream)
    return saved


def _fetch(session: requests.Session, url: str) -> bytes:
    """The body of a presigned URL; an expired or refused one (4xx) is not asked again."""
    try:
        response = session.get(url, timeout=(CONNECT_TIMEOUT, 120))
    except requests.RequestException as exc:
        query = urlsplit(url).query
        last = f"{type(exc).__name__}: {str(exc).replace(query, '...') if query else exc}"
    else:
        if response.status_code == 200:
            return response.content
        last = f"HTTP {response.status_code}: {response.text[:300]}"
    raise CliError(EXIT_SERVER, f"cannot download {urlsplit(url)._replace(query='').geturl()}"
                                f" ({last})")


def wait_for(api: Api, task_id: str, *, timeout: float, interval: float, out: Path | None,
             as_json: bool, out_stream: IO[str], err: IO[str]) -> int:
    display = Display(err, task_id)
    deadline = time.monotonic() + timeout
    delay = min(interval, 0.25)
    try:
        while True:
            record = api.status(task_id)
            status = str(record.get("status"))
            display.show(status, record)
            if status in FINAL:
                break
            if time.monotonic() >= deadline:
                display.close()
                raise CliError(EXIT_TIMEOUT, f"timed out after {timeout:g}s: task {task_id} is "
                                             f"still {status}; `sdctl wait {task_id}` resumes")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(interval, delay * 2)
    finally:
        display.close()
    if as_json:
        print(json.dumps(record, indent=2), file=out_stream)
    if status == FAILED:
        raise CliError(EXIT_TASK_FAILED, _failure(record))
    if status == CANCELLED:
        raise CliError(EXIT_TASK_CANCELLED, f"task {task_id} was cancelled")
    timings = _timings(record)
    if timings:
        print(f"sdctl: {task_id} completed ({timings})", file=err)
    if out is not None:
        saved = download(record, out, out_stream if not as_json else err, err)
        print(f"sdctl: {len(saved)} image(s) in {out / task_id}", file=err)
    return EXIT_OK


def cmd_submit(args: argparse.Namespace, api: Api, out: IO[str], err: IO[str]) -> int:
    path, body, task_id = load_request(args.file, args.id)
    response = api.request("POST", path, json.dumps(body).encode())
    answer = _json_or_raise(response)
    if args.json:
        print(json.dumps(answer, indent=2), file=out)
    else:
        location = answer.get("output_location", "")
        runtime = answer.get("runtime") or answer.get("sd_model_checkpoint") or ""
        print(f"accepted {answer.get('id') or answer.get('id_task')} ({runtime}) -> {location}",
              file=out)
    task_id = str(answer.get("id") or answer.get("id_task") or task_id)
    args.id = task_id  # for the hint if the wait is interrupted
    if not args.wait:
        return EXIT_OK
    return wait_for(api, task_id, timeout=args.timeout, interval=args.interval,
                    out=Path(args.out), as_json=args.json, out_stream=out, err=err)


def cmd_wait(args: argparse.Namespace, api: Api, out: IO[str], err: IO[str]) -> int:
    return wait_for(api, args.id, timeout=args.timeout, interval=args.interval,
                    out=Path(args.out), as_json=args.json, out_stream=out, err=err)


def cmd_status(args: argparse.Namespace, api: Api, out: IO[str], err: IO[str]) -> int:
    record = api.status(args.id)
    if args.json:
        print(json.dumps(record, indent=2), file=out)
    else:
        error = record.get("error")
        rows = [
            ("id", record.get("id")),
            ("runtime", f"{record.get('runtime')} ({record.get('tasktype')})"),
            ("status", f"{record.get('status')} (attempts {record.get('attempts')})"),
            ("created", record.get("created_at")),
            ("updated", record.get("updated_at")),
            ("output", record.get("output_location")),
            *[("image", image) for image in record.get("images") or []],
            ("error", json.dumps(error) if error else "-"),
            ("timings", _timings(record) or "-"),
        ]
        for key, value in rows:
            print(f"{key:<8} {value}", file=out)
    if record.get("status") == FAILED:
        return EXIT_TASK_FAILED
    if record.get("status") == CANCELLED:
        return EXIT_TASK_CANCELLED
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, api: Api, out: IO[str], err: IO[str]) -> int:
    record = api.cancel(args.id)
    if args.json:
        print(json.dumps(record, indent=2), file=out)
    else:
        print(f"cancelled {record.get('id', args.id)}", file=out)
    return EXIT_OK


# --- entry point -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sdctl", description="Submit image-generation tasks and fetch their images.",
        epilog="Exit status: 0 ok, 2 client error (bad input, HTTP 4xx), 3 task failed, "
               "4 timed out, 5 server error or unreachable, 6 task cancelled, "
               "130 interrupted.")
    top.add_argument("--endpoint", help="API base URL, stage included (env SD_ENDPOINT)")
    top.add_argument("--api-key", help="the x-api-key value (env SD_API_KEY)")
    top.add_argument("--stack-dir", help="read endpoint and key from this deployed stack's "
                                         "Terraform outputs")
    top.add_argument("--local-dir", help="the `make local` directory holding connection.json "
                                         "(default: .local here or in a parent; env "
                                         "SD_LOCAL_DIR)")
    top.add_argument("--json", action="store_true", help="print the API's JSON answers")
    sub = top.add_subparsers(dest="command", required=True)

    def waiting(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default=DEFAULT_OUT,
                       help=f"download images into OUT/<id>/ (default {DEFAULT_OUT})")
        p.add_argument("--timeout", type=float, default=600.0,
                       help="seconds to wait for the task (default 600)")
        p.add_argument("--interval", type=float, default=1.0,
                       help="longest pause between status checks (default 1)")

    submit = sub.add_parser("submit", help="submit a request file (v1alpha2 or v1alpha1)")
    submit.add_argument("file", help="JSON request file, - for standard input")
    submit.add_argument("--id", help="use this task id instead of the file's")
    submit.add_argument("--wait", action="store_true",
                        help="follow the task and download its images")
    waiting(submit)
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show a task's status")
    status.add_argument("id")
    status.set_defaults(func=cmd_status)

    wait = sub.add_parser("wait", help="follow a task until it ends; download its images")
    wait.add_argument("id")
    waiting(wait)
    wait.set_defaults(func=cmd_wait)

    cancel = sub.add_parser("cancel", help="cancel a queued or running task")
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_cancel)

    from sdaas.cli import dlq  # noqa: PLC0415 - sdctl dlq builds on this module

    dlq.add_parser(sub)
    return top


def main(argv: list[str] | None = None, *, out: IO[str] | None = None,
         err: IO[str] | None = None, env: Mapping[str, str] | None = None,
         cwd: Path | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    if getattr(args, "timeout", 1) < 0 or getattr(args, "interval", 1) <= 0:
        print("sdctl: --timeout must be >= 0 and --interval > 0", file=err)
        return EXIT_CLIENT
    environ = os.environ if env is None else env
    try:
        if getattr(args, "aws", False):  # sdctl dlq: AWS credentials, not the API
            return int(args.func(args, environ, cwd or Path.cwd(), out, err))
        connection = resolve_connection(args, environ, cwd or Path.cwd())
        return int(args.func(args, Api(connection, err), out, err))
    except CliError as exc:
        print(f"sdctl: {exc.message}", file=err)
        return exc.code
    except KeyboardInterrupt:
        task = None if getattr(args, "aws", False) else getattr(args, "id", None)
        hint = f"; the task goes on: `sdctl wait {task}`" if task else ""
        print(f"\nsdctl: interrupted{hint}", file=err)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
