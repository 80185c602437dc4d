"""The deployed Lambda functions, run in a local process: the API adapter and the event
source poller load a function's real handler (only this repository's ``lambda_src.*``),
give it the environment Terraform gave the function, and a context object like Lambda's."""

from __future__ import annotations

import importlib
import os
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

HANDLER_PACKAGE = "lambda_src."


class FunctionError(RuntimeError):
    """A deployed function cannot run locally (explained in the message)."""


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    if not handler.startswith(HANDLER_PACKAGE):
        raise FunctionError(f"handler {handler!r} is not one of this repository's "
                            f"({HANDLER_PACKAGE}*)")
    module_name, _, attribute = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def function_environments(lambda_client: Any, names: set[str]) -> dict[str, dict[str, str]]:
    return {
        name: dict((lambda_client.get_function_configuration(FunctionName=name)
                    .get("Environment") or {}).get("Variables") or {})
        for name in sorted(names)
    }


def merged_environment(environments: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """One environment for every function, refusing variables they set differently."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    conflicts = []
    for function, variables in environments.items():
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                conflicts.append(f"{name} ({owner[name]}: {merged[name]!r}, {function}: "
                                 f"{value!r})")
                continue
            merged[name] = value
            owner[name] = function
    if conflicts:
        raise FunctionError("the functions run in one local process but set these variables "
                            "differently: " + "; ".join(conflicts))
    return merged


def enter_runtime(environment: Mapping[str, str], emulator: str, region: str) -> None:
    """This process's environment: the functions' own variables, then what a Lambda runtime
    provides (the region), with the AWS SDK aimed at the emulator."""
    os.environ.update(environment)
    os.environ.update({"AWS_ENDPOINT_URL": emulator, "AWS_REGION": region,
                       "AWS_DEFAULT_REGION": region})


def lambda_context(function_name: str, request_id: str, deadline: float,
                   memory_mb: int = 512) -> Any:
    """A context object with the attributes Lambda's Python runtime gives a handler;
    ``deadline`` is a ``time.monotonic()`` value."""
    return types.SimpleNamespace(
        aws_request_id=request_id, function_name=function_name,
        function_version="$LATEST", memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:local:123456789012:function:{function_name}",
        log_group_name=f"/aws/lambda/{function_name}", log_stream_name="local",
        get_remaining_time_in_millis=lambda: max(0, int((deadline - time.monotonic()) * 1000)),
    )
