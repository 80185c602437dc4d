"""Strict JSON, as both programs read a task: no ``NaN``/``Infinity``, finite numbers, at most
:data:`MAX_JSON_DEPTH` levels of nesting (deeper documents are refused before anything
recurses over them)."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64


class JsonError(ValueError):
    """The text is not strict JSON; the message says why."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads(text: str) -> Any:
    """Parse strict JSON; raise :class:`JsonError` saying what is wrong."""
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise JsonError(depth_message()) from None
    except ValueError as exc:  # JSONDecodeError, out-of-range numbers, huge integers
        raise JsonError(f"not valid JSON: {exc}") from None
    if json_depth(document) > MAX_JSON_DEPTH:
        raise JsonError(depth_message())
    return document


def depth_message() -> str:
    return f"nests deeper than {MAX_JSON_DEPTH} levels"


def json_depth(document: Any) -> int:
    """Nesting depth of a parsed JSON value (scalars are 0), level by level, no recursion.

    Stops counting just past ``MAX_JSON_DEPTH``; only containers are visited, so a document
    of millions of scalars costs one pass over its containers.
    """
    deepest = 0
    level = [document] if type(document) is dict or type(document) is list else []
    while level and deepest <= MAX_JSON_DEPTH:
        deepest += 1
        children = []
        for container in level:
            for value in container.values() if type(container) is dict else container:
                if type(value) is dict or type(value) is list:
                    children.append(value)
        level = children
    return deepest
