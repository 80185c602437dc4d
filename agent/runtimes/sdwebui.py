"""AUTOMATIC1111 Stable Diffusion WebUI adapter (``--api``)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import requests

from agent import logs
from agent.errors import PermanentError, TransientError
from agent.images import b64decode, b64encode
from agent.messages import Task
from agent.runtimes.base import (
    CONNECT_TIMEOUT,
    CONTROL_TIMEOUT,
    Cancelled,
    Fetch,
    Prepared,
    RuntimeAdapter,
    RuntimeOutput,
    connection_failure,
    http_failure,
)
from task_contract.legacy import checkpoint_name

ENDPOINTS = {
    "text-to-image": "/sdapi/v1/txt2img",
    "image-to-image": "/sdapi/v1/img2img",
    "extra-single-image": "/sdapi/v1/extra-single-image",
    "extra-batch-images": "/sdapi/v1/extra-batch-images",
}
# Keys of ``alwayson_scripts.<script>.args[i]`` objects that hold images (ControlNet & co.).
SCRIPT_IMAGE_KEYS = ("image", "input_image", "mask", "mask_image")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
MODEL_SWITCH_TIMEOUT = 600.0


def is_url(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL.match(value))


def derived_seed(task_id: str, salt: str) -> int:
    """A seed fixed by the task id, so a retried or duplicated task draws the same images."""
    digest = hashlib.sha256(f"{salt}:{task_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 4294967295


def replace_image_urls(content: dict[str, Any], fetch: Callable[[str], str]) -> int:
    """Replace URLs by base64 image data in the fields that hold images; return the count.

    Only these fields are touched: ``init_images[]``, ``mask``, ``image``,
    ``imageList[].data`` and the image keys of ``alwayson_scripts.*.args[]`` objects. Prompt
    text and every other field are left as they are, whatever they contain.
    """
    count = 0

    def swap(container: Any, key: Any) -> None:
        nonlocal count
        if is_url(container[key]):
            container[key] = fetch(container[key])
            count += 1

    images = content.get("init_images")
    if isinstance(images, list):
        for index in range(len(images)):
            swap(images, index)
    for key in ("mask", "image"):
        if key in content:
            swap(content, key)
    image_list = content.get("imageList")
    if isinstance(image_list, list):
        for item in image_list:
            if isinstance(item, dict) and "data" in item:
                swap(item, "data")
    scripts = content.get("alwayson_scripts")
    if isinstance(scripts, dict):
        for script in scripts.values():
            args = script.get("args") if isinstance(script, dict) else None
            if not isinstance(args, list):
                continue
            for arg in args:
                if not isinstance(arg, dict):
                    continue
                for key in SCRIPT_IMAGE_KEYS:
                    if key not in arg:
                        continue
                    if isinstance(arg[key], dict):
                        for inner in ("image", "mask"):
                            if inner in arg[key]:
                                swap(arg[key], inner)
                    else:
                        swap(arg, key)
    return count


def model_names(model: dict[str, Any]) -> set[str]:
    """Every name a request may use for a checkpoint entry of ``/sdapi/v1/sd-models``."""
    names: set[str] = set()
    for key in ("title", "model_name", "hash", "sha256"):
        value = model.get(key)
        if isinstance(value, str) and value:
            names.add(value)
            names.add(checkpoint_name(value))
    filename = model.get("filename")
    if isinstance(filename, str) and filename:
        base = filename.replace("\\", "/").rsplit("/", 1)[-1]
        names.update({base, base.rsplit(".", 1)[0]})
    return {name.casefold() for name in names if name}


def find_model(requested: str, models: list[dict[str, Any]]) -> dict[str, Any] | None:
    wanted = {requested.strip().casefold(), checkpoint_name(requested).casefold()}
    for model in models:
        if wanted & model_names(model):
            return model
    return None


class _ModelGate:
    """Lets generations share the loaded checkpoint; a switch waits until none is running."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.current: str | None = None
        self._active = 0

    def enter(self, title: str | None, switch: Callable[[str], None]) -> None:
        with self._cond:
            while title is not None and title != self.current and self._active > 0:
                self._cond.wait()
            if title is not None and title != self.current:
                switch(title)
                self.current = title
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()


class SdWebUiAdapter(RuntimeAdapter):
    type_name = "sdwebui"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = _ModelGate()
        self._models: list[dict[str, Any]] | None = None
        self._models_lock = threading.Lock()
        self._current_known = False

    def ready(self) -> bool:
        return self.probe("/internal/ping")

    # -- prepare ---------------------------------------------------------------------------
    def prepare(self, task: Task, fetch: Fetch) -> Prepared:
        body = json.loads(json.dumps(task.content))  # a private deep copy
        count = replace_image_urls(body, lambda url: b64encode(fetch(url)))
        if task.tasktype in ("text-to-image", "image-to-image"):
            for key, salt in (("seed", "seed"), ("subseed", "subseed")):
                if body.get(key) in (None, -1, "-1"):
                    body[key] = derived_seed(task.id, salt)
            body["send_images"] = True
        override = body.get("override_settings")
        if isinstance(override, dict) and "sd_model_checkpoint" in override:
            override = dict(override)
            override.pop("sd_model_checkpoint")
            if override:
                body["override_settings"] = override
            else:
                body.pop("override_settings")
        return Prepared(task=task, body=body, input_count=count)

    # -- run ---------------------------------------------------------------------------------
    def run(self, prepared: Prepared, cancel: threading.Event) -> RuntimeOutput:
        task = prepared.task
        title = self._model_for(task)
        self._gate.enter(title, self._switch_model)
        try:
            if cancel.is_set():
                raise Cancelled()
            prepared.state["generating"] = True
            answer = self._generate(ENDPOINTS[task.tasktype], prepared.body)
        finally:
            prepared.state["generating"] = False
            self._gate.leave()
        if cancel.is_set():
            raise Cancelled()
        return self._output(task, answer)

    def cancel(self, prepared: Prepared) -> None:
        """The WebUI's interrupt stops whatever it generates: sent only while this task's
        generation is the only one in flight. Otherwise the generation ends by itself and
        its images are discarded (before its call, :meth:`run` sees the event)."""
        with self._gate._cond:
            alone = bool(prepared.state.get("generating")) and self._gate._active == 1
        if alone:
            self.interrupt(prepared)
        else:
            logs.event("runtime_interrupt_skipped", task_id=prepared.task.id,
                       reason="other generations share the runtime's global interrupt")

    def interrupt(self, prepared: Prepared | None = None) -> None:
        try:
            self.session.post(self.url("/sdapi/v1/interrupt"), timeout=(CONNECT_TIMEOUT, 10.0))
        except requests.RequestException as exc:
            logs.warning("runtime_interrupt_failed", error=type(exc).__name__)

    def _generate(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.session.post(
                self.url(path), json=body,
                timeout=(CONNECT_TIMEOUT, self.config.task_timeout_seconds),
            )
        except requests.Timeout as exc:
            self.interrupt()
            raise TransientError(
                "runtime_timeout",
                f"the runtime did not answer within {self.config.task_timeout_seconds}s; "
                "generation interrupted",
            ) from exc
        except requests.RequestException as exc:
            raise connection_failure(exc, "calling the runtime") from exc
        if response.status_code != 200:
            raise http_failure(response, f"POST {path}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise TransientError("runtime_error", f"POST {path} returned invalid JSON") from exc
        if not isinstance(answer, dict):
            raise TransientError("runtime_error", f"POST {path} returned {type(answer).__name__}")
        return answer

    def _output(self, task: Task, answer: dict[str, Any]) -> RuntimeOutput:
        raw = answer.get("images")
        if raw is None and "image" in answer:
            raw = [answer["image"]]
        if not isinstance(raw, list):
            raise TransientError("runtime_error", "the runtime answer holds no images")
        try:
            images = [b64decode(item) for item in raw if isinstance(item, str) and item]
        except ValueError as exc:
            raise TransientError("runtime_error", str(exc)) from exc
        info: Any = answer.get("info", answer.get("html_info"))
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except json.JSONDecodeError:
                pass
        seeds: list[Any] = []
        if isinstance(info, dict):
            seeds = info.get("all_seeds") or ([info["seed"]] if "seed" in info else [])
        return RuntimeOutput(images=images, parameters=answer.get("parameters"), seeds=seeds,
                             info=info)

    # -- models ----------------------------------------------------------------------------
    def _model_for(self, task: Task) -> str | None:
        """The checkpoint title the task needs, or None for 'whatever is loaded'."""
        if not task.checkpoint:
            return None
        model = find_model(task.checkpoint, self._list_models(refresh=False))
        if model is None:
            model = find_model(task.checkpoint, self._list_models(refresh=True))
        available = sorted(str(m.get("title")) for m in self._models or [])
        if model is None:
            raise PermanentError(
                "unknown_model",
                f"checkpoint {task.checkpoint!r} is not available on this runtime; "
                f"available: {', '.join(available) or '(none)'}",
                available,
            )
        title = str(model.get("title"))
        current = self._current_model()
        if self.config.dynamic_model:
            return title
        if current is not None and find_model(current, [model]) is None:
            raise PermanentError(
                "unknown_model",
                f"this runtime serves {current!r} and does not switch models "
                f"(DYNAMIC_SD_MODEL is off); the task asks for {task.checkpoint!r}",
                [current],
            )
        return None

    def _list_models(self, refresh: bool) -> list[dict[str, Any]]:
        with self._models_lock:
            if self._models is not None and not refresh:
                return self._models
            try:
                if refresh:
                    self.session.post(self.url("/sdapi/v1/refresh-checkpoints"),
                                      timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
                response = self.session.get(self.url("/sdapi/v1/sd-models"),
                                            timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
            except requests.RequestException as exc:
                raise connection_failure(exc, "listing checkpoints") from exc
            if response.status_code != 200:
                raise http_failure(response, "GET /sdapi/v1/sd-models")
            models = response.json()
            self._models = [m for m in models if isinstance(m, dict)] if isinstance(
                models, list) else []
            return self._models

    def _current_model(self) -> str | None:
        if not self._current_known:
            try:
                response = self.session.get(self.url("/sdapi/v1/options"),
                                            timeout=(CONNECT_TIMEOUT, CONTROL_TIMEOUT))
            except requests.RequestException as exc:
                raise connection_failure(exc, "reading runtime options") from exc
            if response.status_code != 200:
                raise http_failure(response, "GET /sdapi/v1/options")
            current = response.json().get("sd_model_checkpoint")
            with self._gate._cond:
                if self._gate.current is None:
                    self._gate.current = current if isinstance(current, str) else None
            self._current_known = True
        return self._gate.current

    def _switch_model(self, title: str) -> None:
        logs.event("model_switch", to=title, previous=self._gate.current)
        try:
            response = self.session.post(
                self.url("/sdapi/v1/options"), json={"sd_model_checkpoint": title},
                timeout=(CONNECT_TIMEOUT, MODEL_SWITCH_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise connection_failure(exc, f"switching to checkpoint {title!r}") from exc
        if response.status_code != 200:
            raise http_failure(response, "POST /sdapi/v1/options")
