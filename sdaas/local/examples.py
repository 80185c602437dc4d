"""Ready-to-submit requests the local stack writes for a person to try: one per runtime,
in ``<workdir>/examples/<runtime>.json``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sdaas.config import RuntimeConfig
from sdaas.local.workdir import write_json

PROMPT = "a lighthouse on a cliff at dawn"


def example_task(runtime: RuntimeConfig) -> dict[str, Any]:
    """A v1alpha2 request body for ``runtime``: text to image, or ComfyUI's default
    workflow."""
    if runtime.type == "sdwebui":
        task = {"metadata": {"id": f"hello-{runtime.name}", "runtime": runtime.name,
                             "tasktype": "text-to-image", "prefix": "output"},
                "content": {"prompt": PROMPT, "steps": 16, "width": 512, "height": 512}}
    else:
        task = {"metadata": {"id": f"hello-{runtime.name}", "runtime": runtime.name,
                             "tasktype": "pipeline", "prefix": "output"},
                "content": example_workflow(PROMPT)}
    return {"task": task}


def write_examples(runtimes: Iterable[RuntimeConfig], directory: Path) -> dict[str, Path]:
    """One request file per runtime in ``directory``; ``{runtime: path}``."""
    directory.mkdir(exist_ok=True)
    files = {}
    for runtime in runtimes:
        path = directory / f"{runtime.name}.json"
        write_json(path, example_task(runtime))
        files[runtime.name] = path
    return files


def example_workflow(prompt: str) -> dict[str, Any]:
    """ComfyUI's default text-to-image workflow in API format."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 42, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }

