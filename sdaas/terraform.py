"""The ``terraform`` binary run from Python: one runner and one reader of outputs.

Local mode applies the emulated stack with :class:`Terraform`; ``sdctl`` and
``upload-model`` read a deployed stack's outputs with :func:`read_outputs` and
:func:`read_output`; the tests validate and apply with the same runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

RUN_TIMEOUT_SECONDS = 900.0
OUTPUT_TIMEOUT_SECONDS = 120.0
TAIL_LINES = 40
# Terraform run by a program: no prompts, no upgrade check, output meant for logs.
AUTOMATION_ENV = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
INSTALL_HINT = "install Terraform 1.10+ (https://developer.hashicorp.com/terraform)"


class Timer(Protocol):
    """What bounds a command's time: ``threading.Timer``'s interface."""

    def start(self) -> None: ...
    def cancel(self) -> None: ...


class TerraformError(RuntimeError):
    """Terraform is missing, failed, ran out of time or answered something unreadable; the
    message says which, with the last lines it printed."""


def find_binary(binary: str = "terraform") -> str:
    """The full path of ``binary`` on the PATH."""
    found = shutil.which(binary)
    if found is None:
        raise TerraformError(f"terraform is not on the PATH ({binary!r}); {INSTALL_HINT}")
    return found


def check_mirror(plugin_dir: Path) -> Path:
    """``plugin_dir`` when it is a filesystem mirror holding the AWS provider
    (``<dir>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/``)."""
    if not (Path(plugin_dir) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        raise TerraformError(f"TF_PLUGIN_DIR={plugin_dir} holds no "
                             "registry.terraform.io/hashicorp/aws provider")
    return Path(plugin_dir)


def automation_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with :data:`AUTOMATION_ENV`, without a ``TF_CLI_CONFIG_FILE`` naming a file
    that does not exist (Terraform warns about it on every command)."""
    env = {**base, **AUTOMATION_ENV}
    cli_config = env.get("TF_CLI_CONFIG_FILE")
    if cli_config and not Path(cli_config).exists():
        del env["TF_CLI_CONFIG_FILE"]
    return env


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class Terraform:
    """``terraform`` in ``workdir``: each command in its own process group (so a stop ends
    its provider plugins too), bounded by a timeout, its output optionally appended to
    ``log_path`` and streamed line by line to a callback."""

    def __init__(self, workdir: Path, *, binary: str = "terraform",
                 env: Mapping[str, str] | None = None, log_path: Path | None = None,
                 plugin_dir: Path | None = None,
                 preexec_fn: Callable[[], None] | None = None,
                 timer: Callable[[float, Callable[[], None]], Timer] = threading.Timer) -> None:
        self.binary = find_binary(binary)
        self.workdir = Path(workdir)
        self.env = automation_environment(os.environ if env is None else env)
        self.log_path = log_path
        self.plugin_dir = plugin_dir
        self.preexec_fn = preexec_fn
        self.timer = timer  # calls its function once the timeout has passed
        self.proc: subprocess.Popen[str] | None = None

    def run(self, *args: str, check: bool = True, timeout: float = RUN_TIMEOUT_SECONDS,
            on_line: Callable[[str], None] | None = None,
            merge_stderr: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``terraform <args> -no-color``; stdout is streamed to ``on_line`` and the log.

        ``merge_stderr`` interleaves standard error with standard output (a log a person
        reads); otherwise it is kept apart, and appended to the log once the command ends.
        With ``check``, a non-zero exit raises :class:`TerraformError`; running out of time
        always does, after ending the command's process group.
        """
        argv = [self.binary, *args, "-no-color"]
        stdout: list[str] = []
        timed_out = threading.Event()
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(self.log_path.open("a")) if self.log_path else None
            errors = None if merge_stderr else stack.enter_context(
                tempfile.TemporaryFile("w+"))
            if log is not None:
                log.write(f"$ terraform {' '.join(args)}\n")
                log.flush()
            proc = self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else errors,
                stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                preexec_fn=self.preexec_fn,  # noqa: PLW1509 - the caller's, e.g. prctl only
            )
            watchdog = self.timer(timeout, lambda: (timed_out.set(), _end_group(proc)))
            watchdog.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    stdout.append(line)
                    if log is not None:
                        log.write(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                code = proc.wait()
            finally:
                watchdog.cancel()
                self.kill()
            stderr = ""
            if errors is not None:
                errors.seek(0)
                stderr = errors.read()
                if log is not None:
                    log.write(stderr)
        result = subprocess.CompletedProcess(argv, code, "".join(stdout), stderr)
        if timed_out.is_set():
            raise TerraformError(f"terraform {args[0]} took more than {timeout:.0f}s"
                                 + self._where(result))
        if check and code != 0:
            raise TerraformError(f"terraform {' '.join(args)} failed (exit {code})"
                                 + self._where(result))
        return result

    def _where(self, result: subprocess.CompletedProcess[str]) -> str:
        shown = _tail(result.stdout + result.stderr)
        where = f"Last lines of {self.log_path}" if self.log_path else "Last lines"
        return f". {where}:\n{shown or '(no output)'}"

    def kill(self) -> None:
        """End a running command and its provider plugins (its process group): SIGINT (so
        Terraform can release its state lock), SIGKILL after five seconds."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _end_group(proc)

    def init(self, *, backend: bool = True) -> None:
        """``terraform init``; providers from ``plugin_dir`` (a filesystem mirror) when set,
        from the registry otherwise."""
        args = ["init", "-input=false"]
        if self.plugin_dir is not None:
            args.append(f"-plugin-dir={self.plugin_dir}")
        if not backend:
            args.append("-backend=false")
        self.run(*args, merge_stderr=True)

    def outputs(self) -> dict[str, Any]:
        """Every output of the applied stack, ``{name: value}``."""
        return read_outputs(self.workdir, binary=self.binary, env=self.env)


def _end_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _output_command(stack_dir: Path, names: tuple[str, ...], binary: str,
                    env: Mapping[str, str] | None, timeout: float) -> Any:
    what = f"the {names[0]} output" if names else "the outputs"
    try:
        proc = subprocess.run(
            [binary, f"-chdir={stack_dir}", "output", "-no-color", "-json", *names],
            capture_output=True, text=True, timeout=timeout, check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise TerraformError(f"terraform is not installed ({binary!r} is not on the PATH)"
                             ) from None
    except subprocess.TimeoutExpired:
        raise TerraformError(f"terraform output did not answer within {timeout:.0f} s"
                             ) from None
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip() or (proc.stdout or "").strip()
        errors = [line for line in detail.splitlines() if line.startswith("Error: ")]
        raise TerraformError(f"cannot read {what} in {stack_dir} (has the stack been "
                             f"applied?): {errors[0] if errors else _tail(detail, 10)}")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise TerraformError(f"terraform output in {stack_dir} is not JSON: "
                             f"{proc.stdout[:300]!r}") from None


def read_outputs(stack_dir: Path, *, binary: str = "terraform",
                 env: Mapping[str, str] | None = None,
                 timeout: float = OUTPUT_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Every output of the stack applied in ``stack_dir``: ``{name: value}`` (``{}`` when
    nothing is applied yet)."""
    document = _output_command(Path(stack_dir), (), binary, env, timeout)
    if not isinstance(document, dict):
        raise TerraformError(f"terraform output in {stack_dir} is not an object of outputs")
    return {name: body.get("value") for name, body in document.items()
            if isinstance(body, dict)}


def read_output(stack_dir: Path, name: str, *, binary: str = "terraform",
                env: Mapping[str, str] | None = None,
                timeout: float = OUTPUT_TIMEOUT_SECONDS) -> Any:
    """The value of output ``name`` of the stack applied in ``stack_dir``."""
    return _output_command(Path(stack_dir), (name,), binary, env, timeout)
