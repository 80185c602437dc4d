"""The PREVIEW runtime: the SD WebUI or ComfyUI API subset the queue agent uses, answering
with placeholder images. It is NOT a model and never claims to be one.

``make local`` runs one of these beside each queue agent so the whole asynchronous path
(API, queue, agent, bucket, status, result topic) can be seen working on a machine without a
GPU. Every image it returns is a gradient (or the input image, for image-to-image and
upscaling; a solid colour for ComfyUI's EmptyImage) with a "PREVIEW - not a model" banner,
the prompt text and the parameters drawn on it; the PNG's ``parameters`` text chunk says the
same. Every response carries the header ``X-Preview-Runtime``.

Generation takes a fixed ``seconds_per_image`` (rendering included), one request at a time,
like a GPU-bound server. Images are deterministic: the same request gives the same bytes.

Markers a request can carry anywhere in its text (the prompt, a ComfyUI node input, any
string field) to steer the preview, for demonstrations and end-to-end tests:

``[preview:fail]``
    The generation fails the way a runtime failure looks: SD WebUI answers 500
    ``{"error": "PreviewFailure", ...}`` (the queue agent treats a 5xx as transient, so the
    task is retried and fails on its last delivery); ComfyUI ends the prompt with an
    ``execution_error`` on the marked node (permanent for the agent: the task fails at once).
``[preview:invalid]``
    The request is refused as invalid: SD WebUI answers 422 with a FastAPI ``detail`` list;
    ComfyUI fails the marked node's validation (``custom_validation_failed``): a 400 when no
    output is left valid, else, as ComfyUI does, a 200 with ``node_errors`` (either way the
    queue agent fails the task at once).
``[preview:sleep=SECONDS]``
    This request takes SECONDS per image instead of the configured time (at most 3600).
``[preview:kill-agent]``, ``[preview:kill-agent=N]``
    The request kills the queue agent that sent it (SIGKILL, as an out-of-memory kill ends
    its container), every time or on the first N identical requests: the task's message
    comes back after its visibility timeout, reaches the dead-letter queue after
    ``maxReceiveCount`` deliveries, and the dead-letter consumer fails the task
    (:mod:`sdaas.local.agent_kill`; needs ``--agent-pid-file``, which local mode passes).

Endpoints (shapes as in the runtimes' own APIs):

* SD WebUI (``sdwebui``): ``POST /sdapi/v1/txt2img``, ``img2img``, ``extra-single-image``,
  ``extra-batch-images``; ``GET|POST /sdapi/v1/options``; ``GET /sdapi/v1/sd-models``;
  ``POST /sdapi/v1/refresh-checkpoints``, ``unload-checkpoint``, ``reload-checkpoint``,
  ``interrupt``; ``GET /sdapi/v1/progress``, ``/sdapi/v1/memory``, ``/internal/ping``.
  Unknown body keys and non-numeric numeric fields are refused with 422 as FastAPI does;
  sampler, upscaler and script names are not checked.
* ComfyUI (``comfyui``): ComfyUI 0.3.64's ``POST /prompt`` (and ``GET``),
  ``GET|POST /history[/<id>]``, ``GET /view``, ``POST /upload/image``, ``GET|POST /queue``,
  ``POST /interrupt``, ``POST /free``, ``GET /system_stats``, ``GET /object_info``, answering
  as the real server does (checked against its recorded answers; see ``comfyui.py``). The
  core nodes in ``comfyui_nodes.py`` are validated exactly as ComfyUI validates them; other
  classes (custom nodes) are accepted with their links checked. No WebSocket: clients poll
  ``/history`` (the queue agent does).

Modules: ``markers`` (the markers above), ``drawing`` (placeholder pictures), ``sdwebui``;
``comfyui`` (routes, queue, history) with ``comfyui_validation``, ``comfyui_execution``,
``comfyui_files``, ``comfyui_answers``, ``comfyui_nodes`` (generated definitions),
``comfyui_nodes_behaviour`` and ``comfyui_media``; ``server`` (HTTP and command line).

Run one by hand::

    python -m sdaas.local.preview --type sdwebui --port 8080 --seconds-per-image 1
"""

from sdaas.local.preview.comfyui import ComfyUiPreview
from sdaas.local.preview.comfyui_execution import ExecutionFault
from sdaas.local.preview.drawing import LABEL
from sdaas.local.preview.sdwebui import (
    BATCH_KEYS,
    IMG2IMG_KEYS,
    SINGLE_KEYS,
    TXT2IMG_KEYS,
    SdWebUiPreview,
)
from sdaas.local.preview.server import HEADER, RUNTIME_TYPES, PreviewServer, main

__all__ = ["BATCH_KEYS", "HEADER", "IMG2IMG_KEYS", "LABEL", "RUNTIME_TYPES", "SINGLE_KEYS",
           "TXT2IMG_KEYS", "ComfyUiPreview", "ExecutionFault", "PreviewServer",
           "SdWebUiPreview", "main"]
