"""How the preview ComfyUI runs a prompt, as ComfyUI 0.3.64 does: node outputs cached by
their inputs between prompts (what the current prompt does not use is dropped, so an
identical prompt returns the same files and an interrupted one resumes from its finished
nodes), an interrupt checked when each node starts (samplers stop at once), the history
messages (``execution_start``, ``execution_cached``, then ``execution_success``,
``execution_error`` or ``execution_interrupted``) with timestamps. Time passes as
``seconds_per_image`` times the largest batch saved, spread over the nodes that run."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from sdaas.local.preview.comfyui_files import FileStore
from sdaas.local.preview.comfyui_media import Frames
from sdaas.local.preview.comfyui_nodes_behaviour import (
    SAMPLERS,
    NodeFailure,
    SaveContext,
    evaluate,
    save,
    temp_prefix,
)
from sdaas.local.preview.comfyui_validation import Catalogue, full_type_name
from sdaas.local.preview.markers import markers_in


@dataclass
class ExecutionFault:
    """Makes the next prompt that runs fail at its first node of ``node_class`` (tests)."""

    node_class: str
    exception_type: str
    message: str


class _Interrupted(Exception):
    def __init__(self, node_id: str) -> None:
        super().__init__(node_id)
        self.node_id = node_id


@dataclass
class Run:
    """One prompt being executed, and what its history entry will say."""

    prompt_id: str
    prompt: dict[str, Any]
    outputs: list[str]
    messages: list[Any] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    ui: dict[str, Any] = field(default_factory=dict)
    success: bool = True

    def add(self, event: str, **data: Any) -> None:
        self.messages.append([event, {**data, "timestamp": int(time.time() * 1000)}])


def _node_order(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


class Executor:
    def __init__(self, catalogue: Catalogue, files: FileStore, seconds_per_image: float,
                 disable_metadata: bool) -> None:
        self.catalogue = catalogue
        self.files = files
        self.seconds_per_image = seconds_per_image
        self.disable_metadata = disable_metadata
        self.faults: list[ExecutionFault] = []
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        # Node objects live as long as their (id, class) appears in each prompt, and with
        # them PreviewImage's random file prefix (ComfyUI's object cache).
        self._temp_prefixes: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()
        self.interrupted = threading.Event()
        self.stopped = threading.Event()

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def run(self, prompt_id: str, prompt: dict[str, Any], outputs: list[str]) -> Run:
        run = Run(prompt_id, prompt, list(outputs))
        try:
            self._execute(run)
        except Exception as exc:  # the preview's own bug: reported as ComfyUI reports one
            run.success = False
            run.add("execution_error", prompt_id=prompt_id, node_id=None, node_type=None,
                    executed=run.executed, exception_message=f"{exc}\n",
                    exception_type=full_type_name(type(exc)),
                    traceback=traceback.format_tb(exc.__traceback__), current_inputs={},
                    current_outputs=[])
        return run

    def _signatures(self, prompt: dict[str, Any]) -> dict[str, str]:
        """Cache keys: a node's class, inputs and (through links) ancestors, plus the input
        file's hash for LoadImage (ComfyUI's IS_CHANGED)."""
        memo: dict[str, str] = {}

        def signature(node_id: str, trail: tuple[str, ...] = ()) -> str:
            if node_id in memo:
                return memo[node_id]
            node = prompt[node_id]
            inputs = node.get("inputs") or {}
            parts: dict[str, Any] = {}
            for name, value in sorted(inputs.items()):
                if (isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt
                        and str(value[0]) not in trail):
                    parts[name] = [signature(str(value[0]), (*trail, node_id)), value[1]]
                else:
                    parts[name] = value
            if node["class_type"] in ("LoadImage", "LoadImageMask"):
                data = self.files.read_input(str(inputs.get("image")))
                parts["__changed__"] = hashlib.sha256(data or b"").hexdigest()
            memo[node_id] = hashlib.sha256(json.dumps(
                [node["class_type"], parts], sort_keys=True, default=str).encode()).hexdigest()
            return memo[node_id]

        return {node_id: signature(node_id) for node_id in prompt}

    def _order(self, prompt: dict[str, Any], outputs: list[str]) -> list[str]:
        """The nodes the outputs need, dependencies first."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(node_id: str) -> None:
            if node_id in seen:
                return
            seen.add(node_id)
            for value in (prompt[node_id].get("inputs") or {}).values():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                    visit(str(value[0]))
            order.append(node_id)

        for output in sorted(outputs, key=_node_order):
            visit(output)
        return order

    def _execute(self, run: Run) -> None:
        self.interrupted.clear()
        prompt = run.prompt
        run.add("execution_start", prompt_id=run.prompt_id)
        signatures = self._signatures(prompt)
        with self._lock:
            wanted = set(signatures.values())
            self._cache = {sig: v for sig, v in self._cache.items() if sig in wanted}
            cache = dict(self._cache)
            present = {(n, prompt[n]["class_type"]) for n in prompt}
            self._temp_prefixes = {k: v for k, v in self._temp_prefixes.items() if k in present}
        run.add("execution_cached", nodes=[n for n in prompt if signatures[n] in cache],
                prompt_id=run.prompt_id)
        order = self._order(prompt, run.outputs)
        ctx = SaveContext(prompt=None if self.disable_metadata else prompt,
                          write=self.files.write, next_counter=self.files.next_counter,
                          read_input=self.files.read_input,
                          temp_prefix=lambda node: self._temp_prefixes.setdefault(
                              (node, prompt[node]["class_type"]), temp_prefix()))
        values: dict[str, tuple[Any, ...]] = {}
        planned: dict[str, Exception | None] = {}
        to_run = [n for n in order if signatures[n] not in cache]
        for node_id in order:  # shapes first: they decide how long the prompt takes
            if node_id in to_run:
                try:
                    values[node_id] = evaluate(prompt[node_id]["class_type"],
                                               self._resolve(prompt, node_id, values), ctx)
                    planned[node_id] = None
                except Exception as exc:
                    values[node_id] = ()
                    planned[node_id] = exc
            else:
                values[node_id] = cache[signatures[node_id]][0]
                run.ui[node_id] = cache[signatures[node_id]][1]
        share = self._seconds(prompt, run.outputs, values) / max(1, len(to_run))
        for node_id in to_run:
            class_type = prompt[node_id]["class_type"]
            try:
                if self.interrupted.is_set():
                    raise _Interrupted(node_id)
                self._work(share, interruptible=class_type in SAMPLERS, node_id=node_id)
                failure = planned[node_id] or self._fault(prompt, node_id)
                if failure is not None:
                    raise failure
                ui = None
                if self.catalogue.is_output(class_type):
                    ui = save(class_type, self._resolve(prompt, node_id, values), ctx, node_id)
            except _Interrupted as stop:
                run.success = False
                run.add("execution_interrupted", prompt_id=run.prompt_id, node_id=stop.node_id,
                        node_type=prompt[stop.node_id]["class_type"],
                        executed=list(run.executed))
                return
            except Exception as exc:
                run.success = False
                type_name = exc.type_name if isinstance(exc, NodeFailure) else full_type_name(
                    type(exc))
                run.add("execution_error", prompt_id=run.prompt_id, node_id=node_id,
                        node_type=class_type, executed=list(run.executed),
                        exception_message=f"{exc}\n", exception_type=type_name,
                        traceback=traceback.format_tb(exc.__traceback__), current_inputs={},
                        current_outputs=[n for n in prompt if signatures[n] in cache])
                return
            run.executed.append(node_id)
            if ui is not None:
                run.ui[node_id] = ui
            with self._lock:
                self._cache[signatures[node_id]] = (values[node_id], ui)
        run.add("execution_success", prompt_id=run.prompt_id)

    @staticmethod
    def _resolve(prompt: dict[str, Any], node_id: str,
                 values: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, value in (prompt[node_id].get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in values:
                outputs = values[str(value[0])]
                resolved[name] = outputs[value[1]] if value[1] < len(outputs) else None
            else:
                resolved[name] = value
        return resolved

    def _seconds(self, prompt: dict[str, Any], outputs: list[str],
                 values: dict[str, tuple[Any, ...]]) -> float:
        """``seconds_per_image`` (or ``[preview:sleep=S]``) times the largest batch saved."""
        markers = markers_in(json.dumps(prompt, default=str))
        per_image = (self.seconds_per_image if markers.sleep_seconds is None
                     else markers.sleep_seconds)
        batch = 1
        for output in outputs:
            for value in self._resolve(prompt, output, values).values():
                if isinstance(value, Frames):
                    batch = max(batch, value.count)
        return per_image * batch

    def _work(self, seconds: float, interruptible: bool, node_id: str) -> None:
        """The node's run time: an interrupt stops samplers at once, other nodes when done."""
        if seconds <= 0:
            return
        if interruptible:
            if self.interrupted.wait(seconds) and not self.stopped.is_set():
                raise _Interrupted(node_id)
        else:
            self.stopped.wait(seconds)

    def _fault(self, prompt: dict[str, Any], node_id: str) -> Exception | None:
        node = prompt[node_id]
        if markers_in(json.dumps(node.get("inputs") or {}, default=str)).fail:
            return NodeFailure("PreviewFailure",
                               "the workflow asked the preview runtime to fail ([preview:fail])")
        with self._lock:
            for fault in self.faults:
                if fault.node_class == node["class_type"] or not any(
                        n.get("class_type") == fault.node_class for n in prompt.values()):
                    self.faults.remove(fault)
                    return NodeFailure(fault.exception_type, fault.message)
        return None
