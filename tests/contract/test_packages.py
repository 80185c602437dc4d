"""The task contract is inside what is deployed: the Lambda zip and the agent image.

Each package is run on its own: a fresh interpreter (``-I -S``: no site-packages hooks, so
the repository's editable install cannot fill a gap) whose path is the package plus the
third-party libraries the runtime provides (boto3 in Lambda, the image's pip install). A
package missing ``task_contract`` fails on import; one that has it refuses what the
contract refuses.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import dockerfile

from lambda_src import openapi

REPO = Path(__file__).resolve().parents[2]
# Where the runtime's third-party libraries (boto3, requests, pillow) are installed.
SITE_PACKAGES = str(Path(boto3.__file__).resolve().parents[1])


def run_alone(path_entries: list[str], code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` with only ``path_entries`` (then the libraries) on ``sys.path``; return
    the JSON it prints."""
    prelude = f"import sys; sys.path[:0] = {[*path_entries, SITE_PACKAGES]!r}\n"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + code], capture_output=True, text=True,
        timeout=120, env={"PATH": "/usr/bin:/bin", **(env or {})}, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the Lambda package -----------------------------------------------------------------------

LAMBDA_CODE = """
import json
import lambda_src, task_contract
import sys
from lambda_src import cancel, ingest, status, webhooks
task = {"metadata": {"id": "t-1", "runtime": "sdruntime", "tasktype": "text-to-image",
                     "prefix": "_requests/t-0"}, "content": {"steps": "16"}}
posted = ingest.handler({"httpMethod": "POST", "resource": "/v1alpha2",
                         "body": json.dumps({"task": task})}, None)
looked_up = status.handler({"httpMethod": "GET", "resource": "/v1alpha2/tasks/{id}",
                            "pathParameters": {"id": "a b"}}, None)
cancelled = cancel.handler({"httpMethod": "POST", "resource": "/v1alpha2/tasks/{id}/cancel",
                            "pathParameters": {"id": "a b"}}, None)
delivered = webhooks.handler({"Records": [{"messageId": "m-1", "body": "not a result"}]}, None)
document = status.handler({"httpMethod": "GET", "resource": "/v1alpha2/openapi.json"}, None)
print(json.dumps({"files": [lambda_src.__file__, task_contract.__file__],
                  "ingest": [posted["statusCode"], json.loads(posted["body"])],
                  "status": looked_up["statusCode"], "cancel": cancelled["statusCode"],
                  "document": [document["statusCode"], json.loads(document["body"])],
                  "webhooks": delivered, "requests": "requests" in sys.modules}))
"""
LAMBDA_ENV = {"TASK_TABLE": "tasks", "OUTPUT_BUCKET": "outputs", "INPUT_TOPIC_ARN": "arn:t",
              "RUNTIMES": json.dumps({"sdruntime": {"type": "sdwebui"}}),
              "WEBHOOK_SECRET_ARN": "arn:s", "WEBHOOK_QUEUE_URL": "https://q",
              "AWS_REGION": "us-west-2", "LOG_LEVEL": "ERROR"}


def test_the_synthesized_lambda_package_holds_and_uses_the_contract(synthesized: Any) -> None:
    functions = synthesized.resources("aws_lambda_function").values()
    (filename,) = {function["filename"] for function in functions}
    package = synthesized.stack_dir / filename
    names = zipfile.ZipFile(package).namelist()
    assert "task_contract/task.py" in names and "lambda_src/ingest.py" in names
    assert {name.split("/")[0] for name in names} == {"lambda_src", "task_contract"}
    # Every function's handler module is in the package (the dead-letter consumer's too).
    handlers = {function["handler"] for function in functions}
    assert "lambda_src.dead_letters.handler" in handlers
    for handler in handlers:
        assert handler.rsplit(".", 1)[0].replace(".", "/") + ".py" in names, handler

    ran = run_alone([str(package)], LAMBDA_CODE, LAMBDA_ENV)
    assert all(path.startswith(str(package)) for path in ran["files"])
    code, body = ran["ingest"]
    assert code == 400
    assert [d["path"] for d in body["error"]["details"]] == [
        "task.metadata.prefix", "task.content.steps"]
    assert ran["status"] == ran["cancel"] == 400
    code, document = ran["document"]  # the OpenAPI document needs nothing outside the zip
    assert code == 200
    assert document == openapi.document({"sdruntime": "sdwebui"})
    # The deliverer runs from the zip on the standard library (the runtime has no requests).
    assert ran["webhooks"] == {"batchItemFailures": []}
    assert ran["requests"] is False


# --- the agent image --------------------------------------------------------------------------


def assemble_image(dockerfile_path: Path, context: Path, root: Path) -> tuple[Path, list[str]]:
    """The files ``dockerfile_path``'s COPY instructions put in the image, laid out under
    ``root`` as Docker would (sources relative to the build ``context``, destinations
    relative to the current WORKDIR; a directory source copies its contents). Returns the
    final WORKDIR under ``root`` and the ENTRYPOINT."""
    workdir, entrypoint = "/", []
    for command in dockerfile.parse_file(str(dockerfile_path)):
        if command.cmd == "WORKDIR":
            workdir = posixpath.join(workdir, command.value[0])
        elif command.cmd == "ENTRYPOINT":
            entrypoint = list(command.value)
        elif command.cmd in ("COPY", "ADD"):
            assert not any(flag.startswith("--from") for flag in command.flags)
            *sources, destination = command.value
            target = root / posixpath.join(workdir, destination).lstrip("/")
            for source in sources:
                path = context / source
                if path.is_dir():
                    shutil.copytree(path, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    into_dir = destination.endswith("/") or len(sources) > 1
                    file_target = target / path.name if into_dir else target
                    file_target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, file_target)
    return root / workdir.lstrip("/"), entrypoint


AGENT_CODE = """
import json
import agent.__main__, agent.pipeline, agent.runtimes.sdwebui, agent.runtimes.comfyui
import task_contract
from agent.messages import InvalidMessage, parse_task
message = {"metadata": {"id": "t-1", "runtime": "sdruntime", "tasktype": "text-to-image",
                        "prefix": "_requests/t-0"}, "content": {"prompt": "a dog"}}
try:
    parse_task(json.dumps(message), "sdwebui", "sdruntime", lambda url: "", "bucket")
    refused = []
except InvalidMessage as exc:
    refused = [d["path"] for d in exc.details]
print(json.dumps({"files": [agent.__file__, task_contract.__file__], "refused": refused}))
"""


def test_the_agent_image_holds_and_uses_the_contract(tmp_path: Path) -> None:
    app, entrypoint = assemble_image(REPO / "agent" / "Dockerfile", REPO, tmp_path)
    assert entrypoint == ["python", "-m", "agent"]
    assert (app / "task_contract" / "__init__.py").is_file()
    ran = run_alone([str(app)], AGENT_CODE)
    assert all(path.startswith(str(app)) for path in ran["files"])
    assert ran["refused"] == ["metadata.prefix"]
