"""Workflow validation as ComfyUI 0.3.64 does it (``execution.validate_prompt``).

The same checks, in the same order, with the same error documents: unknown or missing
``class_type`` and no output node refuse the whole prompt; every output node is then
validated with its inputs (required inputs, links, return types, value conversion, min/max,
combo lists, a node's own check such as LoadImage's "Invalid image file"). A prompt with at
least one valid output is accepted and runs only those (HTTP 200 with ``node_errors`` for the
others); none valid is a 400 ``prompt_outputs_failed_validation``. An exception raised while
validating is reported as ComfyUI reports it (``exception_during_validation``), so a link to
a node that does not exist shows as a ``KeyError``.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdaas.local.preview.comfyui_nodes import NODE_CLASSES
from sdaas.local.preview.markers import MARKER_RE

# Validation hooks of the classes that define VALIDATE_INPUTS: the inputs they take over
# from the generic checks.
CUSTOM_VALIDATED = {"LoadImage": ("image",), "LoadImageMask": ("image",)}
PREVIEW_REFUSAL = ("the workflow asked the preview runtime to refuse it ([preview:invalid])")


def full_type_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    """Types match when equal, or when their comma-separated unions overlap."""
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    return bool(received & wanted)


@dataclass
class Catalogue:
    """The node classes a server knows and the file-dependent parts of their definitions.

    ``accept_unknown``: classes outside the catalogue are accepted unchecked (the preview,
    since a real deployment may have custom nodes) instead of refused (the real server
    without them). ``input_exists(name)`` answers LoadImage's own check; ``input_images()``
    and ``checkpoints()`` fill the combo lists; ``checkpoints()`` returning None accepts any
    checkpoint name.
    """

    input_exists: Callable[[str], bool]
    input_images: Callable[[], list[str]]
    checkpoints: Callable[[], list[str] | None]
    accept_unknown: bool = False
    classes: dict[str, Any] = field(default_factory=lambda: NODE_CLASSES)

    def known(self, class_type: Any) -> bool:
        return isinstance(class_type, str) and class_type in self.classes

    def exists(self, class_type: Any) -> bool:
        return self.known(class_type) or (self.accept_unknown and isinstance(class_type, str))

    def is_output(self, class_type: str) -> bool:
        if self.known(class_type):
            return bool(self.classes[class_type]["output_node"])
        return class_type.startswith(("Save", "Preview"))

    def return_types(self, class_type: str) -> list[Any] | None:
        """None for an unknown class (any type is accepted from it)."""
        return list(self.classes[class_type]["output"]) if self.known(class_type) else None

    def input_types(self, class_type: str) -> dict[str, dict[str, Any]]:
        spec = self.classes[class_type]["input"]
        out = {category: dict(spec.get(category) or {}) for category in
               ("required", "optional", "hidden")}
        if class_type in ("LoadImage", "LoadImageMask"):
            options = self.input_images()
            out["required"]["image"] = [options, *out["required"]["image"][1:]]
        if class_type == "CheckpointLoaderSimple":
            names = self.checkpoints()
            if names is not None:
                out["required"]["ckpt_name"] = [names, *out["required"]["ckpt_name"][1:]]
            else:
                out["required"]["ckpt_name"] = ["STRING", {}]
        return out


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def validate_prompt(prompt: Any, catalogue: Catalogue,
                    partial: list[str] | None = None
                    ) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
    """(valid, error, outputs to run, node_errors). Raises for a prompt that is not an object
    of nodes (the real server answers those with a bare 500)."""
    outputs = []
    for node_id in prompt:
        if "class_type" not in prompt[node_id]:
            return False, _error("invalid_prompt", "Cannot execute because a node is missing "
                                 "the class_type property.", f"Node ID '#{node_id}'"), [], {}
        class_type = prompt[node_id]["class_type"]
        if not catalogue.exists(class_type):
            return False, _error("invalid_prompt", f"Cannot execute because node {class_type} "
                                 "does not exist.", f"Node ID '#{node_id}'"), [], {}
        if catalogue.is_output(class_type) and (partial is None or node_id in partial):
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
    good: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
    for output in outputs:
        try:
            valid, reasons = validate_inputs(prompt, output, validated, catalogue)[:2]
        except Exception as exc:  # reported, as ComfyUI does
            valid = False
            reasons = [_error("exception_during_validation", "Exception when validating node",
                              str(exc), exception_type=full_type_name(type(exc)),
                              traceback=traceback.format_tb(sys.exc_info()[2]))]
            validated[output] = (False, reasons, output)
        if valid is True:
            good.append(output)
            continue
        failures.append((output, reasons))
        for node_id, (ok, node_reasons, _) in validated.items():
            if ok is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {"errors": node_reasons, "dependent_outputs": [],
                                            "class_type": prompt[node_id]["class_type"]}
                node_errors[node_id]["dependent_outputs"].append(output)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errors in failures
                            for e in errors)
        return False, _error("prompt_outputs_failed_validation",
                             "Prompt outputs failed validation", details), [], node_errors
    return True, None, good, node_errors


def validate_inputs(prompt: dict[str, Any], node_id: str,
                    validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
                    catalogue: Catalogue) -> tuple[bool, list[dict[str, Any]], str]:
    if node_id in validated:
        return validated[node_id]
    inputs = prompt[node_id]["inputs"]
    class_type = prompt[node_id]["class_type"]
    if not catalogue.known(class_type):
        result = _validate_unknown(prompt, node_id, inputs, validated, catalogue)
        validated[node_id] = result
        return result
    class_inputs = catalogue.input_types(class_type)
    custom = CUSTOM_VALIDATED.get(class_type, ())
    errors: list[dict[str, Any]] = []
    valid = True
    for name in set(class_inputs["required"]) | set(class_inputs["optional"]):
        category = "required" if name in class_inputs["required"] else "optional"
        declared = class_inputs[category][name]
        input_type = declared[0]
        extra_info = declared[1] if len(declared) > 1 else {}
        if name not in inputs:
            if category == "required":
                errors.append(_error("required_input_missing", "Required input is missing",
                                     name, input_name=name))
            continue
        value = inputs[name]
        info = [input_type, extra_info]
        if isinstance(value, list):
            if len(value) != 2:
                errors.append(_error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]", name,
                    input_name=name, input_config=info, received_value=value))
                continue
            source_id = value[0]
            source_types = catalogue.return_types(prompt[source_id]["class_type"])
            if source_types is not None:
                received_type = source_types[value[1]]
                if not validate_node_input(received_type, input_type):
                    errors.append(_error(
                        "return_type_mismatch", "Return type mismatch between linked nodes",
                        f"{name}, received_type({received_type}) mismatch "
                        f"input_type({input_type})", input_name=name, input_config=info,
                        received_type=received_type, linked_node=value))
                    continue
            try:
                if validate_inputs(prompt, source_id, validated, catalogue)[0] is False:
                    valid = False
                    continue
            except Exception as exc:
                valid = False
                validated[source_id] = (False, [_error(
                    "exception_during_inner_validation", "Exception when validating inner node",
                    str(exc), input_name=name, input_config=info, exception_message=str(exc),
                    exception_type=full_type_name(type(exc)),
                    traceback=traceback.format_tb(sys.exc_info()[2]), linked_node=value)],
                    source_id)
                continue
        else:
            try:
                if isinstance(value, dict) and "__value__" in value:
                    value = inputs[name] = value["__value__"]
                converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
                    input_type if isinstance(input_type, str) else "")
                if converter is not None:
                    value = inputs[name] = converter(value)
            except Exception as exc:
                errors.append(_error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {input_type} value",
                    f"{name}, {value}, {exc}", input_name=name, input_config=info,
                    received_value=value, exception_message=str(exc)))
                continue
            if name in custom:
                continue
            if "min" in extra_info and value < extra_info["min"]:
                errors.append(_error("value_smaller_than_min",
                                     f"Value {value} smaller than min of {extra_info['min']}",
                                     name, input_name=name, input_config=info,
                                     received_value=value))
                continue
            if "max" in extra_info and value > extra_info["max"]:
                errors.append(_error("value_bigger_than_max",
                                     f"Value {value} bigger than max of {extra_info['max']}",
                                     name, input_name=name, input_config=info,
                                     received_value=value))
                continue
            if isinstance(input_type, list) and value not in input_type:
                listed = (f"(list of length {len(input_type)})" if len(input_type) > 20
                          else str(input_type))
                errors.append(_error("value_not_in_list", "Value not in list",
                                     f"{name}: '{value}' not in {listed}", input_name=name,
                                     input_config=None if len(input_type) > 20 else info,
                                     received_value=value))
                continue
    if custom:
        image = inputs.get("image")
        if not catalogue.input_exists(str(image)):
            errors.append(_error("custom_validation_failed", "Custom validation failed for node",
                                 f"image - Invalid image file: {image}", input_name="image"))
    _preview_refusal(inputs, errors)
    result = (False, errors, node_id) if errors or valid is not True else (True, [], node_id)
    validated[node_id] = result
    return result


def _validate_unknown(prompt: dict[str, Any], node_id: str, inputs: Any,
                      validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
                      catalogue: Catalogue) -> tuple[bool, list[dict[str, Any]], str]:
    """A class the preview does not know (accepted unchecked): only its links are followed."""
    errors: list[dict[str, Any]] = []
    valid = True
    for name, value in (inputs.items() if isinstance(inputs, dict) else []):
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
            if validate_inputs(prompt, value[0], validated, catalogue)[0] is False:
                valid = False
        elif isinstance(value, list):
            errors.append(_error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]", name,
                input_name=name, received_value=value))
    _preview_refusal(inputs, errors)
    return (False, errors, node_id) if errors or not valid else (True, [], node_id)


def _preview_refusal(inputs: Any, errors: list[dict[str, Any]]) -> None:
    """``[preview:invalid]`` in a node's inputs fails that node's validation."""
    values = inputs.values() if isinstance(inputs, dict) else []
    if any(isinstance(v, str) and MARKER_RE.search(v) and "[preview:invalid]" in v
           for v in values):
        errors.append(_error("custom_validation_failed", "Custom validation failed for node",
                             PREVIEW_REFUSAL, input_name=""))
