"""Property-based tests: message parsing never crashes; URL replacement stays in its fields;
every non-public address is refused."""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.messages import InvalidMessage, Task, parse_task
from agent.runtimes.sdwebui import replace_image_urls
from task_contract.netguard import forbidden_reason

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["metadata", "content", "content_ref", "id", "tasktype", "runtime",
                        "prefix", "alwayson_scripts", "task", "id_task", "Type", "Message"])


def _no_load(url: str) -> str:
    raise AssertionError("no claim check expected")


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, JSON | st.dictionaries(KEYS, JSON, max_size=5), max_size=6))
def test_any_body_parses_or_is_invalid(body: dict[str, Any]) -> None:
    body.pop("content_ref", None)
    if isinstance(body.get("metadata"), dict):
        body["metadata"].pop("content_ref", None)
    try:
        task = parse_task(json.dumps(body), "sdwebui", "sdruntime", _no_load, "bucket")
    except InvalidMessage as exc:
        assert exc.permanent and exc.message
        return
    assert isinstance(task, Task) and isinstance(task.content, dict)
    assert ".." not in task.prefix.split("/") and not task.prefix.startswith("/")


@settings(max_examples=300, deadline=None)
@given(JSON, st.text(max_size=50))
def test_urls_are_replaced_only_in_image_fields(extra: Any, prompt: str) -> None:
    content = {"prompt": f"{prompt} s3://x/y.png", "extra": extra,
               "init_images": ["s3://in/a.png"], "negative_prompt": "https://h/x.png"}
    before = copy.deepcopy(content)
    replace_image_urls(content, lambda url: "DATA")
    assert content["init_images"] == ["DATA"]
    for key in ("prompt", "extra", "negative_prompt"):
        assert content[key] == before[key]


PRIVATE_V4 = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PRIVATE_V4), st.integers(min_value=0, max_value=2**32 - 1))
def test_every_address_in_a_non_public_range_is_refused(network, offset: int) -> None:
    address = network[offset % network.num_addresses]
    assert forbidden_reason(address) is not None
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert forbidden_reason(mapped) is not None


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**120 - 1))
def test_unique_local_and_link_local_v6_are_refused(offset: int) -> None:
    for network in (ipaddress.ip_network("fc00::/7"), ipaddress.ip_network("fe80::/10")):
        assert forbidden_reason(network[offset % network.num_addresses]) is not None
