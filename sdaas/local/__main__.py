"""``python -m sdaas.local up|down|status`` (``make local`` / ``make local-down``).

``up`` runs in the foreground until Ctrl-C (or ``down`` from another terminal, or SIGTERM),
then stops everything it started. Exit status: 0 stopped on request, 1 failed to start or a
process died, 3 another local stack is already running from the same directory.

Two more commands are the building blocks ``up`` uses, also handy alone:
``emulator`` (moto's server with our fixes, on loopback) and ``synth`` (write the local
stack's Terraform configuration against a given emulator endpoint).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

DESCRIPTION = "The whole asynchronous path on this machine, against a local AWS emulator."


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _sdctl() -> str:
    beside = Path(sys.executable).parent / "sdctl"
    if beside.exists():
        return _display(beside)
    return shutil.which("sdctl") or "sdctl"


def _summary(stack) -> str:
    connection = stack.connection
    seconds = stack.settings.seconds_per_image
    runtimes = [
        f"{r.name} ({r.type}) -> PREVIEW runtime {stack.runtime_urls[r.name]} "
        f"(placeholder images, not a model; {seconds:g}s per image)"
        for r in stack.config.runtimes]
    first = stack.config.runtimes[0].name
    example = _display(stack.example_files[first])
    out = _display(stack.workdir / "outputs")
    lines = [
        "",
        "The local stack is running. Ctrl-C here (or `make local-down` in another terminal) "
        "stops it.",
        "",
        f"  API endpoint   {connection.endpoint}",
        f"  API key        {connection.api_key}",
        f"  Runtimes       {runtimes[0]}",
        *[f"                 {line}" for line in runtimes[1:]],
        "  Webhooks       delivered by the deployed deliverer; receivers on 127.0.0.1 allowed "
        "here only (http:// too)",
        f"  AWS emulator   {connection.aws_endpoint_url} (moto; region {connection.region}, "
        "any credentials)",
        f"  Output bucket  s3://{connection.output_bucket}/",
        f"  Connection     {_display(stack.connection_path)}",
        f"  Logs           {_display(stack.logs)}/",
        "",
        "Try it:",
        f"  {_sdctl()} submit {example} --wait --out {out}",
        f"  curl -s -X POST {connection.endpoint}/v1alpha2 -H "
        f"{shlex.quote('x-api-key: ' + connection.api_key)} "
        f"-H 'content-type: application/json' -d @{example}",
        f"  curl -s {connection.endpoint}/v1alpha2/tasks/hello-{first} -H "
        f"{shlex.quote('x-api-key: ' + connection.api_key)}",
        "",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    from sdaas.config import ConfigError  # noqa: PLC0415
    from sdaas.local.errors import AlreadyRunning, LocalStackError  # noqa: PLC0415
    from sdaas.local.processes import (  # noqa: PLC0415
        signals_ignored,
        signals_stop_the_stack,
    )
    from sdaas.local.progress import TerminalProgress  # noqa: PLC0415
    from sdaas.local.settings import LocalSettings  # noqa: PLC0415
    from sdaas.local.stack import LocalStack  # noqa: PLC0415

    settings = LocalSettings(
        workdir=Path(args.workdir), config_file=Path(args.config) if args.config else None,
        seconds_per_image=args.seconds_per_image, api_port=args.port)
    progress = TerminalProgress()
    try:
        stack = LocalStack(settings, progress)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    code = 0
    with signals_stop_the_stack():
        try:
            stack.start()
        except AlreadyRunning as exc:
            print(f"make local: {exc}", file=sys.stderr)
            return 3
        except LocalStackError as exc:
            progress.info("")
            print(f"make local: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            progress.info("Stopped while starting; nothing left running.")
            return 0
        try:
            print(_summary(stack), flush=True)
            code = stack.supervise()
        except KeyboardInterrupt:
            progress.info("")
        finally:
            with signals_ignored():
                progress.info("Stopping the local stack ...")
                stack.stop()
                progress.info("Stopped; nothing left running.")
    return code


def cmd_down(args: argparse.Namespace) -> int:
    from sdaas.local.workdir import stop_running  # noqa: PLC0415

    return stop_running(Path(args.workdir), timeout=args.timeout)


def cmd_status(args: argparse.Namespace) -> int:
    from sdaas.local.workdir import is_ours, lock_is_held, read_json  # noqa: PLC0415

    workdir = Path(args.workdir).resolve()
    state = read_json(workdir / "state.json")
    if not lock_is_held(workdir) or not state:
        print(f"no local stack is running from {workdir}")
        return 1
    print(f"local stack {state['phase']} (pid {state['pid']}); endpoint "
          f"{state.get('endpoint') or '(not yet)'}; emulator {state.get('emulator')}")
    for name, child in sorted(state.get("children", {}).items()):
        alive = isinstance(child.get("pid"), int) and is_ours(child["pid"], state["instance"])
        port = f", port {child['port']}" if child.get("port") else ""
        print(f"  {name:<22} pid {child.get('pid')}{port} {'running' if alive else 'GONE'}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from sdaas.local._serve import (  # noqa: PLC0415
        serve_until_signalled,
        write_ready_file,
    )
    from sdaas.local.emulator import Emulator  # noqa: PLC0415

    emulator = Emulator(port=args.port, log_requests=args.log_requests).start()
    print(f"AWS emulator (moto) on {emulator.endpoint}", flush=True)
    port = int(emulator.endpoint.rsplit(":", 1)[1])
    write_ready_file(args.ready_file, port=port, endpoint=emulator.endpoint)
    serve_until_signalled(emulator.stop)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from sdaas.config import load_config  # noqa: PLC0415
    from sdaas.local.deploy import synthesize  # noqa: PLC0415

    stack_dir = synthesize(load_config(args.config), args.endpoint, Path(args.outdir).resolve())
    print(stack_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdaas.local",
                                     description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    workdir = {"default": os.environ.get("SD_LOCAL_DIR", ".local"),
               "help": "state, logs and connection.json (default .local; env SD_LOCAL_DIR)"}

    up = sub.add_parser("up", help="start the local stack; Ctrl-C stops it")
    up.add_argument("--workdir", **workdir)
    up.add_argument("--config", help="configuration file (default: SD_CONFIG, config.yaml or "
                                     "config.example.yaml)")
    up.add_argument("--seconds-per-image", type=float,
                    default=float(os.environ.get("SD_PREVIEW_SECONDS_PER_IMAGE", "1.0")),
                    help="time the preview runtimes take per image (default 1.0; env "
                         "SD_PREVIEW_SECONDS_PER_IMAGE)")
    up.add_argument("--port", type=int, default=int(os.environ.get("SD_LOCAL_PORT", "0")),
                    help="API port on 127.0.0.1 (default: a free one; env SD_LOCAL_PORT)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the local stack running from --workdir")
    down.add_argument("--workdir", **workdir)
    down.add_argument("--timeout", type=float, default=60.0)
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="is a local stack running, and its processes")
    status.add_argument("--workdir", **workdir)
    status.set_defaults(func=cmd_status)

    emulator = sub.add_parser("emulator", help="only the AWS emulator (moto with our fixes)")
    emulator.add_argument("--port", type=int, default=0)
    emulator.add_argument("--ready-file")
    emulator.add_argument("--log-requests", action="store_true")
    emulator.set_defaults(func=cmd_emulator)

    synth = sub.add_parser("synth", help="write the local stack's Terraform configuration")
    synth.add_argument("--config", required=True)
    synth.add_argument("--endpoint", required=True, help="the emulator's endpoint URL")
    synth.add_argument("--outdir", required=True)
    synth.set_defaults(func=cmd_synth)

    args = parser.parse_args(argv)
    if getattr(args, "seconds_per_image", 0) < 0:
        parser.error("--seconds-per-image must be >= 0")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
