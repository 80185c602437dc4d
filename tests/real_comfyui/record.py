"""Record the real ComfyUI's answers to the scenarios (and its node definitions).

Usage, with ``SD_COMFYUI_SOURCE`` naming the source (``.ci/run`` sets it)::

    python -m tests.real_comfyui.record            # writes tests/real_comfyui/recordings/
    python -m tests.real_comfyui.record --url http://127.0.0.1:8188   # a server already up

Starts a fresh server (cached environment, see ``server.py``), runs every scenario of
``scenarios.py`` in order with the salt ``q7rec``, and writes the normalized answers plus the
``/object_info`` of the node classes the fake implements to
``recordings/comfyui-<version>.json``. The fast test replays the same scenarios against the
fake; the real-server tier replays them against the real server.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import requests

from tests.real_comfyui.scenarios import run_scenarios
from tests.real_comfyui.server import ComfyServer, ComfySource, Environment

RECORDINGS = Path(__file__).resolve().parent / "recordings"
RECORD_SALT = "q7rec"  # text that appears nowhere else in the answers


def recording_path(version: str) -> Path:
    return RECORDINGS / f"comfyui-{version}.json"


def node_definitions(base_url: str, classes: tuple[str, ...]) -> dict[str, Any]:
    """What validation uses from ``/object_info`` for ``classes``: the inputs as
    ``INPUT_TYPES`` declares them (errors quote them), return types, output node or not."""
    out: dict[str, Any] = {}
    for name in classes:
        answer = requests.get(f"{base_url}/object_info/{name}", timeout=30).json()
        if name not in answer:
            raise RuntimeError(f"the server has no node class {name}")
        info = answer[name]
        out[name] = {"input": info["input"], "output": info["output"],
                     "output_node": info["output_node"]}
    return out


# Combo lists that list the server's files (input images, checkpoints): not definitions.
FILE_LISTS = (("LoadImage", "image"), ("LoadImageMask", "image"),
              ("CheckpointLoaderSimple", "ckpt_name"))


def without_file_lists(definitions: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(definitions))
    for name, field in FILE_LISTS:
        if name in out:
            out[name]["input"]["required"][field][0] = []
    return out


def write_nodes_module(definitions: dict[str, Any], version: str) -> Path:
    """Regenerate the fake's node catalogue from the real server's definitions."""
    from sdaas.local.preview import comfyui_nodes

    target = Path(comfyui_nodes.__file__)
    body = json.dumps(without_file_lists(definitions), indent=1, sort_keys=True)
    body = body.replace(": true", ": True").replace(": false", ": False").replace(
        ": null", ": None").replace("[true", "[True").replace("[false", "[False")
    target.write_text(
        f'''# ruff: noqa: E501 - generated data: the definitions' own text
"""Node classes the preview ComfyUI knows, as ComfyUI {version} defines them.

Generated from the real server's ``/object_info`` by ``python -m tests.real_comfyui.record
--write-nodes``; the real-server tier checks it still matches. Do not edit by hand. Combo
lists that depend on files (input images, checkpoints) are replaced at validation time.
"""

from typing import Any

COMFYUI_VERSION = "{version}"

NODE_CLASSES: dict[str, Any] = {body}
''')
    return target


def record(base_url: str, version: str) -> dict[str, Any]:
    from sdaas.local.preview.comfyui_nodes import NODE_CLASSES

    return {"comfyui_version": version,
            "nodes": node_definitions(base_url, tuple(NODE_CLASSES)),
            "scenarios": run_scenarios(base_url, RECORD_SALT)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.real_comfyui.record")
    parser.add_argument("--url", help="a running ComfyUI (default: start one from the source)")
    parser.add_argument("--output", type=Path, help="where to write (default: recordings/)")
    parser.add_argument("--write-nodes", action="store_true",
                        help="also regenerate the fake's node catalogue (comfyui_nodes.py)")
    args = parser.parse_args(argv)
    source = ComfySource.from_environment()
    server = None
    try:
        if args.url:
            base_url = args.url
        else:
            python = Environment(source).ensure()
            workdir = Path(tempfile.mkdtemp(prefix="comfyui-record-"))
            server = ComfyServer(python, source, workdir / "server").start()
            base_url = server.url
        document = record(base_url, source.version)
    finally:
        if server is not None:
            server.stop()
    target = args.output or recording_path(source.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}: {len(document['scenarios'])} scenarios")
    if args.write_nodes:
        print(f"wrote {write_nodes_module(document['nodes'], source.version)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
