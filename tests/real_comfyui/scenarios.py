"""A fixed list of ComfyUI exchanges, and what the answers look like once normalized.

The same scenarios run against the real server (``record.py`` stores the answers under
``recordings/``; the real-server tier checks they still hold) and against the project's
fake (a fast test requires the same answers). They cover every point where the agent can
observe the server: partly valid workflows, targeted interrupts, output caching, when a
history entry appears after an interrupt, validation error types, the 500 for a ``prompt``
that is not an object, the history entry's shape, empty 200 bodies, ``/view`` defaults and
content types, SaveImage subfolders, ``/upload/image`` renaming and animated/video outputs.

Normalization removes what legitimately differs between two runs: prompt ids become
``<prompt:NAME>``, timestamps ``<timestamp>``, queue numbers ``<number>``, tracebacks and a
failed node's tensor dumps placeholders, the run's salt ``<salt>`` (it keeps runs on one
server apart), PreviewImage's random file name part ``<random>``; lists ComfyUI builds from
sets are sorted. What depends on timing (which node an interrupt lands on) is recorded as
relations that must hold, not as values.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from PIL import Image

CLIENT_ID = "recorded-client"
HISTORY_WAIT_SECONDS = 300.0  # generous: a loaded machine runs the CPU nodes slowly
POLL_SECONDS = 0.05
_TEMP_NAME = re.compile(r"_temp_[a-z]{5}_")
_SET_ORDERED_KEYS = ("dependent_outputs", "executed", "nodes")


# --- workflows ------------------------------------------------------------------------------


def empty_image(width: int, height: int, batch: int = 1, color: int = 0) -> dict[str, Any]:
    return {"class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": batch, "color": color}}


def save_image(source: str, prefix: str) -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": [source, 0], "filename_prefix": prefix}}


def slow_workflow(prefix: str, blurs: int = 5, size: int = 1024,
                  color: int = 0x336699) -> dict[str, Any]:
    """EmptyImage size x size -> ``blurs`` x ImageBlur radius 31 -> SaveImage: about a second
    of CPU work per blur on the real server, and no model weights."""
    workflow: dict[str, Any] = {"1": empty_image(size, size, color=color)}
    previous = "1"
    for index in range(blurs):
        node = str(10 + index)
        workflow[node] = {"class_type": "ImageBlur",
                          "inputs": {"image": [previous, 0], "blur_radius": 31, "sigma": 1.0}}
        previous = node
    workflow["9"] = save_image(previous, prefix)
    return workflow


def video_workflow(prefix: str, frames: int = 3, size: int = 32) -> dict[str, Any]:
    return {
        "1": empty_image(size, size, batch=frames, color=0x00FF80),
        "2": {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["1", 0], "filename_prefix": f"{prefix}-webp", "fps": 6.0,
            "lossless": False, "quality": 80, "method": "default"}},
        "3": {"class_type": "SaveAnimatedPNG", "inputs": {
            "images": ["1", 0], "filename_prefix": f"{prefix}-apng", "fps": 6.0,
            "compress_level": 4}},
        "4": {"class_type": "SaveWEBM", "inputs": {
            "images": ["1", 0], "filename_prefix": f"{prefix}-webm", "codec": "vp9",
            "fps": 6.0, "crf": 32.0}},
    }


FLUSH_WORKFLOW = {"1": empty_image(8, 8, color=1),
                  "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


# --- normalization --------------------------------------------------------------------------


def describe_media(data: bytes) -> dict[str, Any]:
    """What a client can tell from output bytes: format, size, frames, embedded prompt."""
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return {"format": "webm" if b"webm" in data[:64] else "matroska"}
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = dict(getattr(image, "text", {}) or {})
            exif = image.getexif()
            return {"format": image.format, "size": list(image.size),
                    "frames": int(getattr(image, "n_frames", 1)),
                    "prompt_embedded": "prompt" in text or any(
                        str(v).startswith("prompt:") for v in exif.values())}
    except (OSError, ValueError):
        return {"format": "unknown", "bytes": len(data)}


@dataclass
class Normalizer:
    salt: str
    names: dict[str, str] = field(default_factory=dict)  # prompt id -> name

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if key == "timestamp" and isinstance(value, int):
            return "<timestamp>"
        if key == "number" and isinstance(value, (int, float)):
            return "<number>"
        if key == "traceback":
            return "<traceback>"
        if key in ("current_inputs", "current_outputs"):
            return "<values>"
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            items = [self(v) for v in value]
            if key in _SET_ORDERED_KEYS or key == "errors":
                items = sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
            return items
        if isinstance(value, str):
            if value in self.names:
                return f"<prompt:{self.names[value]}>"
            return _TEMP_NAME.sub("_temp_<random>_", value.replace(self.salt, "<salt>"))
        return value

    def history_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An entry's ``prompt`` tuple is [number, id, workflow, extra_data, outputs]."""
        prompt = list(entry.get("prompt") or [])
        if len(prompt) == 5:
            prompt[0] = "<number>"
            prompt[4] = sorted(prompt[4])
        return self({**entry, "prompt": prompt})

    def queue(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {key: [self.history_entry({"prompt": item})["prompt"] for item in items]
                for key, items in answer.items()}


# --- the driver -------------------------------------------------------------------------------


class Driver:
    """Runs scenario steps against one server and keeps the normalized answers."""

    def __init__(self, base_url: str, salt: str) -> None:
        self.base_url = base_url
        self.salt = salt
        self.session = requests.Session()
        self.session.trust_env = False
        self.normalize = Normalizer(salt)
        self.ids: dict[str, str] = {}  # name -> prompt id
        self.records: list[dict[str, Any]] = []

    # -- raw calls -------------------------------------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}{path}", timeout=60, **kwargs)

    def keep(self, step: str, response: requests.Response, body: Any = None,
             **extra: Any) -> None:
        headers = {"content_type": response.headers.get("Content-Type")}
        if "Content-Disposition" in response.headers:
            headers["content_disposition"] = self.normalize(
                response.headers["Content-Disposition"])
        if body is None:
            body = self._body(response)
        self.records.append({"step": step, "status": response.status_code, **headers,
                             "body": body, **extra})

    def fact(self, step: str, **values: Any) -> None:
        self.records.append({"step": step, **values})

    def _body(self, response: requests.Response) -> Any:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            return self.normalize(response.json())
        if kind.startswith("text/") or not response.content:
            return response.text
        return describe_media(response.content)

    # -- steps -----------------------------------------------------------------------------
    def submit(self, name: str, workflow: Any, keep: bool = True, **extra: Any) -> str | None:
        body = {"prompt": workflow, "client_id": CLIENT_ID, **extra}
        response = self.call("POST", "/prompt", json=body)
        prompt_id = None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            prompt_id = response.json().get("prompt_id")
        if prompt_id:
            self.ids[name] = prompt_id
            self.normalize.names[prompt_id] = name
        if keep:
            self.keep(f"POST /prompt {name}", response)
        return prompt_id

    def post(self, step: str, path: str, body: Any = None, keep: bool = True,
             **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        response = self.call("POST", path, **kwargs)
        if keep:
            self.keep(step, response)
        return response

    def get(self, step: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.call("GET", path, **kwargs)
        self.keep(step, response)
        return response

    def history(self, name: str) -> dict[str, Any]:
        response = self.call("GET", f"/history/{self.ids[name]}")
        response.raise_for_status()
        return dict(response.json())

    def wait_history(self, name: str, keep: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + HISTORY_WAIT_SECONDS
        while True:
            answer = self.history(name)
            if answer:
                entry = answer[self.ids[name]]
                if keep:
                    self.records.append({"step": f"history {name}",
                                         "body": self.normalize.history_entry(entry)})
                return dict(entry)
            if time.monotonic() > deadline:
                raise AssertionError(f"no history entry for {name} within "
                                     f"{HISTORY_WAIT_SECONDS:.0f}s")
            time.sleep(POLL_SECONDS)

    def queue_state(self) -> dict[str, list[str]]:
        answer = self.call("GET", "/queue").json()
        return {key: [item[1] for item in answer[key]]
                for key in ("queue_running", "queue_pending")}

    def wait_running(self, name: str) -> None:
        deadline = time.monotonic() + HISTORY_WAIT_SECONDS
        while self.ids[name] not in self.queue_state()["queue_running"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start running")
            time.sleep(POLL_SECONDS)

    def flush(self) -> None:
        """Run an unrelated prompt so the server's cache holds nothing a scenario uses."""
        self.submit("flush", FLUSH_WORKFLOW, keep=False)
        self.wait_history("flush", keep=False)
        self.call("POST", "/history", json={"delete": [self.ids["flush"]]})

    def view(self, step: str, **params: Any) -> requests.Response:
        return self.get(step, "/view", params=params)

    def upload(self, step: str, filename: str, data: bytes, **fields: str) -> dict[str, Any]:
        response = self.call("POST", "/upload/image", files={"image": (filename, data,
                                                                        "image/png")},
                             data=fields)
        self.keep(step, response)
        return dict(response.json()) if response.status_code == 200 else {}


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


# --- scenarios --------------------------------------------------------------------------------


def save_image_subfolder_and_view(d: Driver) -> None:
    d.flush()
    d.submit("save", {"1": empty_image(64, 48, batch=2, color=0x123456),
                      "2": save_image("1", f"{d.salt}/sub/pic")})
    entry = d.wait_history("save")
    first = entry["outputs"]["2"]["images"][0]
    d.view("view with type", **first)
    d.view("view without type", filename=first["filename"], subfolder=first["subfolder"])
    d.view("view without subfolder", filename=first["filename"])
    d.view("view of type temp", filename=first["filename"], subfolder=first["subfolder"],
           type="temp")
    d.view("view of an unknown type", filename=first["filename"], type="nope")
    d.view("view of a parent path", filename="../secret.png")
    d.view("view escaping by subfolder", filename=first["filename"], subfolder="../..")
    d.get("view without filename", "/view")
    d.post("delete the entry", "/history", {"delete": [d.ids["save"]]})
    d.get("history after delete", f"/history/{d.ids['save']}")


def identical_prompt_is_cached(d: Driver) -> None:
    d.flush()
    workflow = {"1": empty_image(32, 32, color=0x0000FF),
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                "3": save_image("2", f"{d.salt}-cache")}
    d.submit("first", workflow)
    d.wait_history("first")
    d.submit("again", workflow)
    d.wait_history("again")


def partly_valid_workflow(d: Driver) -> None:
    d.flush()
    d.submit("partly", {"1": empty_image(16, 16, color=0x00FF00),
                        "2": save_image("1", f"{d.salt}-valid"),
                        "3": empty_image(0, 16),
                        "4": save_image("3", f"{d.salt}-invalid")})
    d.wait_history("partly")


def validation_errors(d: Driver) -> None:
    good = empty_image(8, 8, color=2)
    cases: dict[str, Any] = {
        "unknown node class": {"1": {"class_type": "NoSuchNode", "inputs": {}},
                               "2": save_image("1", "x")},
        "missing class_type": {"1": {"inputs": {}}, "2": save_image("1", "x")},
        "no output node": {"1": good},
        "every output invalid": {"1": empty_image(0, 8), "2": save_image("1", "x")},
        "required input missing": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}},
                                   "2": save_image("1", "x")},
        "link to a missing node": {"2": save_image("99", "x")},
        "link of the wrong length": {"1": good, "2": {"class_type": "SaveImage", "inputs": {
            "images": ["1", 0, 0], "filename_prefix": "x"}}},
        "link of the wrong type": {"1": {"class_type": "LoadImage", "inputs": {
            "image": "nothing.png"}}, "2": {"class_type": "SaveImage", "inputs": {
                "images": ["1", 1], "filename_prefix": "x"}}},
        "not a number": {"1": {**good, "inputs": {**good["inputs"], "width": "wide"}},
                         "2": save_image("1", "x")},
        "above the maximum": {"1": {**good, "inputs": {**good["inputs"], "height": 20000}},
                              "2": save_image("1", "x")},
        "not in the list": {"1": good, "2": {"class_type": "ImageScale", "inputs": {
            "image": ["1", 0], "upscale_method": "magic", "width": 8, "height": 8,
            "crop": "disabled"}}, "3": save_image("2", "x")},
        "image not uploaded": {"1": {"class_type": "LoadImage", "inputs": {
            "image": f"{d.salt}-missing.png"}}, "2": save_image("1", "x")},
        # One failing output only: with several, ComfyUI's report depends on the order it
        # iterates a set of output ids in, which changes from one server run to the next.
        "several errors": {"1": empty_image(0, 0), "2": {"class_type": "ImageBlur", "inputs": {
            "image": ["1", 0]}}, "3": save_image("2", "x")},
    }
    for name, workflow in cases.items():
        d.submit(name, workflow)
    d.post("POST /prompt without prompt", "/prompt", {"client_id": CLIENT_ID})
    d.post("POST /prompt with a list", "/prompt", {"prompt": [1, 2]})
    d.post("POST /prompt with a string", "/prompt", {"prompt": "a cat"})
    d.post("POST /prompt with a string id", "/prompt",
           {"prompt": {"1": good, "2": save_image("1", f"{d.salt}-chosen-id")},
            "prompt_id": f"{d.salt}-chosen"}, keep=True)


def upload_renaming(d: Driver) -> None:
    d.flush()
    name = f"{d.salt}-in.png"
    first, other = png(20, 10, (255, 0, 0)), png(30, 10, (0, 0, 255))
    d.upload("upload", name, first)
    d.upload("same name, other bytes", name, other)
    d.upload("same name, same bytes", name, first)
    d.upload("same name, other bytes, overwrite", name, other, overwrite="true")
    d.upload("into a subfolder", name, first, subfolder="sub")
    d.upload("into a parent folder", name, first, subfolder="../..")
    d.upload("as a temp file", name, first, type="temp")
    d.post("upload without an image", "/upload/image", data={"overwrite": "true"})
    renamed = f"{d.salt}-in (1).png"
    d.view("view an input", filename=renamed, type="input")
    d.submit("load", {"1": {"class_type": "LoadImage", "inputs": {"image": f"sub/{name}"}},
                      "2": save_image("1", f"{d.salt}-loaded")})
    entry = d.wait_history("load")
    d.view("view the loaded copy", **entry["outputs"]["2"]["images"][0])


def empty_answers(d: Driver) -> None:
    d.post("POST /queue delete", "/queue", {"delete": [f"{d.salt}-none"]})
    d.post("POST /queue clear", "/queue", {"clear": False})
    d.post("POST /interrupt by id", "/interrupt", {"prompt_id": f"{d.salt}-none"})
    d.post("POST /history delete", "/history", {"delete": [f"{d.salt}-none"]})
    d.post("POST /free", "/free", {"unload_models": False, "free_memory": False})
    d.get("GET /queue", "/queue")
    d.get("GET /prompt", "/prompt")
    d.get("GET /history of an unknown id", f"/history/{d.salt}-none")


def interrupt_targets_its_prompt(d: Driver) -> None:
    d.flush()
    workflow = slow_workflow(f"{d.salt}-slow")
    d.submit("slow", workflow)
    d.wait_running("slow")
    d.submit("waiting", {"1": empty_image(16, 16, color=0xABCDEF),
                         "2": save_image("1", f"{d.salt}-waiting")})
    d.fact("queue while running", queue=d.normalize(d.queue_state()))
    d.post("interrupt the waiting one", "/interrupt", {"prompt_id": d.ids["waiting"]})
    d.fact("still running", queue=d.normalize(d.queue_state()))
    d.post("delete the waiting one", "/queue", {"delete": [d.ids["waiting"]]})
    d.fact("after delete", queue=d.normalize(d.queue_state()))
    d.post("interrupt the running one", "/interrupt", {"prompt_id": d.ids["slow"]})
    # The entry is written when the running node finishes, not when the interrupt arrives.
    d.fact("history right after the interrupt", entry_present=bool(d.history("slow")))
    entry = d.wait_history("slow", keep=False)
    messages = entry["status"]["messages"]
    interrupted = messages[-1][1]
    executed = sorted(interrupted["executed"])
    d.fact("interrupted entry", body=d.normalize.history_entry({
        **entry, "status": {**entry["status"], "messages": [
            [kind, {**data, "node_id": "<node>", "executed": "<executed>"}
             if kind == "execution_interrupted" else data] for kind, data in messages]}}),
        node_is_next_after_executed=interrupted["node_id"] not in executed
        and interrupted["node_id"] in workflow,
        executed_within_workflow=set(executed) <= set(workflow))
    d.fact("the waiting one never ran", entry_present=bool(d.history("waiting")))
    d.submit("resumed", workflow)
    resumed = d.wait_history("resumed", keep=False)
    cached = resumed["status"]["messages"][1][1]["nodes"]
    d.fact("resumed from the finished nodes", cached_equals_executed=sorted(cached) == executed,
           status=resumed["status"]["status_str"],
           outputs=d.normalize(resumed["outputs"]))


def video_and_animated_outputs(d: Driver) -> None:
    d.flush()
    d.submit("video", video_workflow(d.salt))
    entry = d.wait_history("video")
    for node in ("2", "3", "4"):
        d.view(f"view output of {node}", **entry["outputs"][node]["images"][0])


def execution_error(d: Driver) -> None:
    d.flush()
    d.submit("failing", {"1": empty_image(16, 16, batch=2, color=0x777777),
                         "2": {"class_type": "SaveWEBM", "inputs": {
                             "images": ["1", 0], "filename_prefix": f"{d.salt}-bad",
                             "codec": "h265", "fps": 6.0, "crf": 32.0}}})
    d.wait_history("failing")


def preview_image_is_temp(d: Driver) -> None:
    d.flush()
    d.submit("preview", {"1": empty_image(24, 24, color=0xFF00FF),
                         "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
    entry = d.wait_history("preview")
    first = entry["outputs"]["2"]["images"][0]
    d.view("view a temp output", **first)
    d.view("view it as output", filename=first["filename"], type="output")


SCENARIOS: dict[str, Callable[[Driver], None]] = {
    f.__name__: f for f in (
        save_image_subfolder_and_view, identical_prompt_is_cached, partly_valid_workflow,
        validation_errors, upload_renaming, empty_answers, interrupt_targets_its_prompt,
        video_and_animated_outputs, execution_error, preview_image_is_temp)
}


def run_scenarios(base_url: str, salt: str,
                  names: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every scenario (or ``names``) in order; each name maps to its normalized answers."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names or list(SCENARIOS):
        driver = Driver(base_url, salt)
        SCENARIOS[name](driver)
        out[name] = driver.records
    return out


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Readable differences between two normalized answers (empty when they agree)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: missing (expected {json.dumps(expected[key])[:200]})")
            elif key not in expected:
                found.append(f"{where}: unexpected {json.dumps(actual[key])[:200]}")
            else:
                found.extend(differences(expected[key], actual[key], where))
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found.extend(differences(left, right, f"{path}[{index}]"))
        return found
    if expected != actual:
        return [f"{path}: expected {json.dumps(expected)[:300]}, got {json.dumps(actual)[:300]}"]
    return []
