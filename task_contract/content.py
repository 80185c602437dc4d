"""What a task's ``content`` must hold for the fields the runtime and the agent act on.

SD WebUI (AUTOMATIC1111) bodies: the numbers that size the work (steps, image size, batch
size, iterations) within the WebUI's own bounds, the other numbers it reads within their
meaning, names and prompts as strings, images as strings. Fields not listed here pass
untouched: the WebUI has many, and its extensions more. ComfyUI workflows: API format.

Limits (docs/contracts.md lists them with their reasons):

* ``steps`` 1-150, ``width``/``height`` 64-2048 in multiples of 8, ``batch_size`` 1-8,
  ``n_iter`` 1-100, ``cfg_scale`` 1-30, ``denoising_strength`` 0-1: the WebUI's own
  bounds (the sliders of ``modules/ui.py``). Its API takes more, but a request outside them
  is a mistake or an attempt to hold a GPU for hours, and the latent space needs
  multiples of 8.
* ``seed``/``subseed``: -1 (random) or 0-4294967295, the 32-bit range the WebUI draws its
  own seeds from.
* ``prompt``/``negative_prompt``: at most 10,000 characters, the limit Stability AI's hosted
  API sets; the text encoder reads 75 tokens a chunk, so this is hundreds of chunks already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from task_contract.problems import MISSING, Problems, join, json_type

MAX_PROMPT_CHARS = 10_000
MAX_NAME_CHARS = 256  # a sampler, scheduler or checkpoint name
MAX_NODE_ID_CHARS = 64  # longer workflow node ids are cut in problem paths


@dataclass(frozen=True, kw_only=True)
class NumberRule:
    """A number field of a WebUI body: its kind, its bounds, and whether null means 'unset'."""

    low: float
    high: float
    integer: bool = True
    multiple_of: int | None = None
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.nullable:
            return None
        kind = "an integer" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {kind} (got {json_type(value)})"
        if self.integer and not isinstance(value, int):
            return f"must be {kind} (got {value})"
        if not self.low <= value <= self.high:
            return f"must be {kind} from {_number(self.low)} to {_number(self.high)} (got {value})"
        if self.multiple_of and value % self.multiple_of:
            return f"must be a multiple of {self.multiple_of} (got {value})"
        return None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


SEED = NumberRule(low=-1, high=4_294_967_295, nullable=True)
SIZE = NumberRule(low=64, high=2048, multiple_of=8)
SDWEBUI_NUMBERS: Mapping[str, NumberRule] = {
    "steps": NumberRule(low=1, high=150),
    "width": SIZE,
    "height": SIZE,
    "batch_size": NumberRule(low=1, high=8),
    "n_iter": NumberRule(low=1, high=100),
    "cfg_scale": NumberRule(low=1, high=30, integer=False),
    "seed": SEED,
    "subseed": SEED,
    "denoising_strength": NumberRule(low=0, high=1, integer=False),
}
# Text fields and their length limit; null means "the WebUI's default" for the names.
SDWEBUI_TEXTS: Mapping[str, tuple[int, bool]] = {
    "prompt": (MAX_PROMPT_CHARS, False),
    "negative_prompt": (MAX_PROMPT_CHARS, False),
    "sampler_name": (MAX_NAME_CHARS, True),
    "scheduler": (MAX_NAME_CHARS, True),
}
# Where each task type takes its input image(s); image_link (alwayson_scripts) also counts
# for the two that accept a single URL (the reference's older form).
INPUT_FIELDS: Mapping[str, str] = {
    "image-to-image": "init_images",
    "extra-single-image": "image",
    "extra-batch-images": "imageList",
}
IMAGE_LINK_FIELDS: Mapping[str, str] = {
    "image-to-image": "init_images",
    "extra-single-image": "image",
}
IMAGE_LINK = "image_link"


def check_sdwebui(content: dict[str, Any], tasktype: str, path: str,
                  problems: Problems) -> None:
    """Every problem of an SD WebUI body for ``tasktype``, each under ``path``."""
    for name, rule in SDWEBUI_NUMBERS.items():
        if name in content:
            message = rule.problem(content[name])
            if message:
                problems.add(join(path, name), message)
    for name, (limit, nullable) in SDWEBUI_TEXTS.items():
        if name in content:
            _check_text(content[name], limit, nullable, join(path, name), problems)
    _check_images(content, path, problems)
    scripts = content.get("alwayson_scripts", MISSING)
    if scripts is not MISSING and not isinstance(scripts, dict):
        problems.add(join(path, "alwayson_scripts"),
                     f"must be an object (got {json_type(scripts)})")
    link = scripts.get(IMAGE_LINK, MISSING) if isinstance(scripts, dict) else MISSING
    if link is not MISSING and (not isinstance(link, str) or not link):
        problems.add(join(join(path, "alwayson_scripts"), IMAGE_LINK),
                     "must be a non-empty string (the image URL)")
    override = content.get("override_settings", MISSING)
    if override is not MISSING and not isinstance(override, dict):
        problems.add(join(path, "override_settings"),
                     f"must be an object (got {json_type(override)})")
    elif isinstance(override, dict) and "sd_model_checkpoint" in override:
        _check_text(override["sd_model_checkpoint"], MAX_NAME_CHARS, False,
                    join(join(path, "override_settings"), "sd_model_checkpoint"), problems)
    _check_input_given(content, tasktype, path, problems)


def _check_text(value: Any, limit: int, nullable: bool, path: str, problems: Problems) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        problems.add(path, f"must be a string (got {json_type(value)})")
    elif len(value) > limit:
        problems.add(path, f"must be at most {limit} characters (got {len(value)})")


def _check_image(value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, str) or not value:
        problems.add(path, "must be a non-empty string: base64 image data, a data: URI or a "
                           f"URL (got {json_type(value)})")


def _check_images(content: dict[str, Any], path: str, problems: Problems) -> None:
    images = content.get("init_images", MISSING)
    if images is not MISSING and images is not None:
        if not isinstance(images, list):
            problems.add(join(path, "init_images"),
                         f"must be an array of images (got {json_type(images)})")
        else:
            for index, image in enumerate(images):
                _check_image(image, join(join(path, "init_images"), index), problems)
    for name in ("image", "mask"):
        value = content.get(name, MISSING)
        if value is not MISSING and value is not None:
            _check_image(value, join(path, name), problems)
    image_list = content.get("imageList", MISSING)
    if image_list is MISSING or image_list is None:
        return
    where = join(path, "imageList")
    if not isinstance(image_list, list):
        problems.add(where, f"must be an array of {{\"data\", \"name\"}} objects "
                            f"(got {json_type(image_list)})")
        return
    for index, item in enumerate(image_list):
        if not isinstance(item, dict):
            problems.add(join(where, index),
                         f"must be a {{\"data\", \"name\"}} object (got {json_type(item)})")
        else:
            _check_image(item.get("data"), join(join(where, index), "data"), problems)


def _check_input_given(content: dict[str, Any], tasktype: str, path: str,
                       problems: Problems) -> None:
    field = INPUT_FIELDS.get(tasktype)
    if field is None or content.get(field):
        return
    if tasktype in IMAGE_LINK_FIELDS and image_link(content) is not None:
        return
    alternative = (f" (or alwayson_scripts.{IMAGE_LINK}, a URL)"
                   if tasktype in IMAGE_LINK_FIELDS else "")
    problems.add(join(path, field), f"is required for {tasktype}: the input image"
                                    f"{'s' if field != 'image' else ''}{alternative}")


def image_link(content: dict[str, Any]) -> str | None:
    """``alwayson_scripts.image_link``, the reference's way to name an input image by URL."""
    scripts = content.get("alwayson_scripts")
    link = scripts.get(IMAGE_LINK) if isinstance(scripts, dict) else None
    return link if isinstance(link, str) and link else None


def with_image_link(content: dict[str, Any], tasktype: str) -> dict[str, Any]:
    """``content`` with ``image_link`` copied to where the WebUI API takes the input image
    (``init_images`` for image-to-image, ``image`` for extra-single-image) when nothing is
    there; a new top-level object, nested values shared."""
    field = IMAGE_LINK_FIELDS.get(tasktype)
    link = image_link(content)
    if field is None or link is None or content.get(field):
        return content
    return {**content, field: [link] if field == "init_images" else link}


def check_workflow(content: dict[str, Any], path: str, problems: Problems) -> None:
    """A ComfyUI workflow in API format: node id -> ``{"class_type", "inputs"}``."""
    if not content:
        problems.add(path, "must be a ComfyUI workflow in API format (node id -> node); got {}")
        return
    if isinstance(content.get("nodes"), list) and "links" in content:
        problems.add(
            path,
            "looks like a ComfyUI UI workflow; export it with 'Save (API Format)' instead",
        )
        return
    for node_id, node in content.items():
        shown = (node_id if len(node_id) <= MAX_NODE_ID_CHARS
                 else node_id[:MAX_NODE_ID_CHARS - 3] + "...")
        where = join(path, shown)
        if not isinstance(node, dict):
            problems.add(where, f"must be a workflow node object (got {json_type(node)})")
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            problems.add(join(where, "class_type"), "is required: the node's class name")
        if not isinstance(node.get("inputs"), dict):
            found = json_type(node["inputs"]) if "inputs" in node else "nothing"
            problems.add(join(where, "inputs"), f"must be an object (got {found})")


def check_content(content: dict[str, Any], tasktype: str, path: str,
                  problems: Problems) -> None:
    """The content rules of ``tasktype``'s runtime type."""
    if tasktype == "pipeline":
        check_workflow(content, path, problems)
    else:
        check_sdwebui(content, tasktype, path, problems)
