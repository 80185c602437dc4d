"""``metadata.webhook`` at submit time: every problem with its path, for ingest (through the
handler, a 400 listing them) and for the agent (the same contract), and the SSRF guard's
address rules shared with the agent's inputs."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest

from agent.messages import InvalidMessage, parse_task
from task_contract import netguard
from task_contract.problems import Problems
from task_contract.webhook import MAX_URL_CHARS, check_webhook, signature, wants

PATH = "task.metadata.webhook"


def problems(value, allow_loopback: bool = False) -> list[dict[str, str]]:
    found = Problems()
    check_webhook(value, PATH, found, allow_loopback=allow_loopback)
    return found.items


@pytest.mark.parametrize(("value", "path", "message"), [
    ("https://example.com/hook", PATH, "must be an object"),
    ([], PATH, "must be an object (got array)"),
    ({}, f"{PATH}.url", "is required"),
    ({"url": 5}, f"{PATH}.url", "must be a string (got number)"),
    ({"url": "http://example.com/hook"}, f"{PATH}.url", "must be an https:// URL"),
    ({"url": "ftp://example.com/hook"}, f"{PATH}.url", "must be an https:// URL"),
    ({"url": "example.com/hook"}, f"{PATH}.url", "must be an https:// URL"),
    ({"url": "https:///hook"}, f"{PATH}.url", "must name a host"),
    ({"url": "https://user:pw@example.com/"}, f"{PATH}.url",
     "must not carry a user name or password"),
    ({"url": "https://example.com/a b"}, f"{PATH}.url", "must not contain spaces"),
    ({"url": "https://example.com:99999/"}, f"{PATH}.url", "is not a valid URL"),
    ({"url": "https://example.com/#x"}, f"{PATH}.url", "must not have a #fragment"),
    ({"url": "https://example.com/" + "a" * MAX_URL_CHARS}, f"{PATH}.url",
     f"must be at most {MAX_URL_CHARS} characters"),
    ({"url": "https://localhost/"}, f"{PATH}.url", "must not name localhost"),
    ({"url": "https://127.0.0.1/"}, f"{PATH}.url", "names 127.0.0.1, a loopback address"),
    ({"url": "https://[::1]:8443/"}, f"{PATH}.url", "names ::1, a loopback address"),
    ({"url": "https://10.0.0.8/"}, f"{PATH}.url", "names 10.0.0.8, a private address"),
    ({"url": "https://169.254.169.254/latest/meta-data"}, f"{PATH}.url",
     "names 169.254.169.254, a link-local address"),
    ({"url": "https://[::ffff:192.168.1.1]/"}, f"{PATH}.url", "a private address"),
    ({"url": "https://224.0.0.1/"}, f"{PATH}.url", "a multicast address"),
    ({"url": "https://example.com", "events": "completed"}, f"{PATH}.events",
     "must be an array (got string)"),
    ({"url": "https://example.com", "events": []}, f"{PATH}.events",
     "must name at least one of completed, failed, cancelled"),
    ({"url": "https://example.com", "events": ["completed", "done"]}, f"{PATH}.events[1]",
     "must be one of completed, failed, cancelled"),
    ({"url": "https://example.com", "secret": "x"}, f"{PATH}.secret",
     "is not a webhook field"),
])
def test_each_webhook_problem_names_its_path(value, path: str, message: str) -> None:
    found = problems(value)
    assert [item["path"] for item in found] == [path]
    assert message in found[0]["message"]


@pytest.mark.parametrize(("value", "normalised"), [
    ({"url": "https://hooks.example.com/sd?x=1"},
     {"url": "https://hooks.example.com/sd?x=1", "events": ["completed", "failed", "cancelled"]}),
    ({"url": "https://93.184.216.34:8443/h", "events": ["failed", "failed", "cancelled"]},
     {"url": "https://93.184.216.34:8443/h", "events": ["failed", "cancelled"]}),
    ({"url": "HTTPS://Example.COM/", "events": None},
     {"url": "HTTPS://Example.COM/", "events": ["completed", "failed", "cancelled"]}),
])
def test_valid_webhooks_are_normalised(value, normalised) -> None:
    found = Problems()
    assert check_webhook(value, PATH, found) == normalised
    assert not found


def test_absent_or_null_is_no_webhook() -> None:
    from task_contract.problems import MISSING
    for value in (MISSING, None):
        found = Problems()
        assert check_webhook(value, PATH, found) is None and not found


def test_loopback_receivers_only_with_the_local_mode_setting() -> None:
    for url in ("http://127.0.0.1:8080/h", "http://localhost:9/h", "https://[::1]/h"):
        assert problems({"url": url}) != []
        assert problems({"url": url}, allow_loopback=True) == []
    # Local mode opens loopback only: other private addresses and plain http elsewhere stay
    # refused.
    for url in ("https://10.0.0.1/", "http://example.com/", "https://169.254.169.254/"):
        assert problems({"url": url}, allow_loopback=True) != []


def test_events_filter_and_signature() -> None:
    assert wants({"events": ["failed"]}, "failed")
    assert not wants({"events": ["failed"]}, "completed")
    assert wants({}, "cancelled")
    assert signature("k", 10, b"{}") != signature("k", 11, b"{}")
    assert signature("k", 10, b"{}") != signature("j", 10, b"{}")
    assert signature("k", 10, b"{}").startswith("t=10,v1=")


# --- the agent applies the same rules ----------------------------------------------------


def _message(hook) -> str:
    return json.dumps({"metadata": {"id": "t1", "runtime": "sdruntime",
                                    "tasktype": "text-to-image", "webhook": hook},
                       "content": {"prompt": "a dog"}})


def test_the_agent_accepts_a_task_with_a_webhook_and_refuses_a_bad_one() -> None:
    task = parse_task(_message({"url": "https://hooks.example.com/x"}), "sdwebui",
                      "sdruntime", lambda url: "", "bucket")
    assert task.id == "t1"
    with pytest.raises(InvalidMessage) as caught:
        parse_task(_message({"url": "https://169.254.169.254/"}), "sdwebui", "sdruntime",
                   lambda url: "", "bucket")
    assert [d["path"] for d in caught.value.details] == ["metadata.webhook.url"]
    local = {"url": "http://127.0.0.1:9000/x"}
    with pytest.raises(InvalidMessage):
        parse_task(_message(local), "sdwebui", "sdruntime", lambda url: "", "bucket")
    assert parse_task(_message(local), "sdwebui", "sdruntime", lambda url: "", "bucket",
                      allow_loopback_webhooks=True).id == "t1"


# --- the shared SSRF guard ----------------------------------------------------------------


def test_every_resolved_address_is_checked() -> None:
    assert netguard.resolve_checked("a.example", 443, timeout=1,
                                    resolver=lambda h, p: ["93.184.216.34"]) == \
        ipaddress.ip_address("93.184.216.34")
    with pytest.raises(netguard.Refused) as caught:
        netguard.resolve_checked("a.example", 443, timeout=1,
                                 resolver=lambda h, p: ["93.184.216.34", "fd00::1"])
    assert caught.value.reason == "private"
    with pytest.raises(netguard.ResolutionUnavailable):
        netguard.resolve_checked("a.example", 443, timeout=1, resolver=lambda h, p: [])


def test_a_name_that_does_not_exist_is_unresolvable() -> None:
    def missing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(netguard.Unresolvable):
        netguard.resolve_checked("nowhere.example", 443, timeout=1, resolver=missing)


def test_a_literal_address_is_not_resolved() -> None:
    def never(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address was looked up")

    with pytest.raises(netguard.Refused):
        netguard.resolve_checked("[::1]", 443, timeout=1, resolver=never)
    assert str(netguard.resolve_checked("::1", 443, timeout=1, resolver=never,
                                        rule=netguard.loopback_allowed)) == "::1"


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001"])
def test_numeric_host_forms_pass_submit_but_resolve_to_loopback_and_are_refused(host) -> None:
    """Forms the submit check reads as names; the system resolver (no network: they are
    numbers) turns them into 127.0.0.1, which the delivery-time check refuses."""
    assert problems({"url": f"https://{host}/hook"}) == []
    with pytest.raises(netguard.Refused) as caught:
        netguard.resolve_checked(host, 443, timeout=5)
    assert caught.value.reason == "loopback"
