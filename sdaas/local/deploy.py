"""Local mode's Terraform side: the real ``ServerlessIngress`` synthesized with the AWS
provider's endpoints pointed at the emulator (by the app's own builder), then applied with
:class:`sdaas.terraform.Terraform` while a progress line counts the resources.

The emulated resources are never destroyed with Terraform: their only copy is the emulator's
memory, which dies with its process, and each start applies to a fresh emulator with a fresh
state file. So the output bucket needs no ``force_destroy`` in local mode.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sdaas.config import Config, LocalState
from sdaas.local.errors import LocalStackError
from sdaas.local.processes import pdeathsig_preexec, tail
from sdaas.local.progress import Progress
from sdaas.terraform import Terraform

SYNTH_TIMEOUT_SECONDS = 600
_PLAN_RE = re.compile(r"Plan: (\d+) to add")
_DONE_RE = re.compile(r"^(\S+): Creation complete after")
_STILL_RE = re.compile(r"^(\S+): Still creating\.\.\. \[(?:\d+m)?\d+s elapsed\]")


def stack_name(config: Config) -> str:
    """The local stack's name: the ingress of the configured service."""
    return f"{config.name}-ingress"


def synthesize(config: Config, endpoint: str, outdir: Path) -> Path:
    """Write the local stack (``ServerlessIngress`` against ``endpoint``); its directory.

    The state backend is always a local file in local mode, whatever the configuration
    says: the emulated resources must never reach a shared state.
    """
    from sdaas.app import INGRESS_ONLY, Emulation, build_app  # noqa: PLC0415 - heavy: jsii

    local = config.model_copy(update={"state": LocalState()})
    return build_app(local, outdir, parts=INGRESS_ONLY, emulation=Emulation(endpoint=endpoint),
                     stack_name=stack_name(config)).synth()


def synthesize_in_child(config_file: Path, endpoint: str, outdir: Path, *, log: Path,
                        env: Mapping[str, str], cwd: Path) -> Path:
    """:func:`synthesize` in a child process (``python -m sdaas.local synth``), so the
    orchestrator never loads jsii and the provider bindings; its errors go to ``log``."""
    with log.open("ab") as handle:
        proc = subprocess.run(
            [sys.executable, "-m", "sdaas.local", "synth",
             "--config", str(config_file), "--endpoint", endpoint, "--outdir", str(outdir)],
            cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=handle,
            timeout=SYNTH_TIMEOUT_SECONDS, check=False, start_new_session=True,
            preexec_fn=pdeathsig_preexec(),
        )
    if proc.returncode != 0:
        raise LocalStackError(f"synthesizing the local stack failed. Last lines of {log}:"
                              f"\n{tail(log)}")
    return Path(proc.stdout.decode().strip().splitlines()[-1])


def apply(terraform: Terraform, progress: Progress) -> None:
    """``terraform apply``, with a progress line: resources created out of planned, time
    spent, and the kind of resource it waits on."""
    total = 0
    done: set[str] = set()
    waiting: dict[str, str] = {}
    started = time.monotonic()

    def on_line(line: str) -> None:
        nonlocal total
        plan = _PLAN_RE.search(line)
        if plan:
            total = int(plan.group(1))
        finished = _DONE_RE.match(line)
        if finished:
            done.add(finished.group(1))
            waiting.pop(finished.group(1), None)
        still = _STILL_RE.match(line)
        if still:
            waiting[still.group(1)] = line
        elapsed = time.monotonic() - started
        if not total:
            progress.update(f"terraform apply: planning, {elapsed:.0f}s")
            return
        slow = sorted(waiting)
        hint = f"; waiting on {slow[0].split('.')[0]}" if slow else ""
        progress.update(f"terraform apply: {len(done)}/{total} resources created, "
                        f"{elapsed:.0f}s{hint}")

    terraform.run("apply", "-auto-approve", "-input=false", on_line=on_line, merge_stderr=True)
