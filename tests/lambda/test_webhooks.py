"""The webhook deliverer against an emulated account and a receiver on loopback.

The path is the deployed one: ingest records the task (with its webhook), the result
message goes to a result topic, SNS delivers it raw to a delivery queue with a redrive
policy, and local mode's poller (the stand-in for Lambda's SQS poller) hands batches to
``lambda_src.webhooks.handler``. Deliveries are verified with the verifier printed in
docs/contracts.md, extracted from it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_src import config, webhooks
from sdaas.local.event_sources import EventSource, Poller
from task_contract.problems import Problems
from task_contract.result import result_message
from tests.support.tls import self_signed
from tests.support.webhooks import Receiver, verify_webhook

from .support import Account, t2i

SECRET = "s3cr3t-signing-value-for-tests"
NOW = 1_760_000_000
MAX_ATTEMPTS = 3


@dataclass
class Deliveries:
    """The result topic, the delivery queue (with its dead-letter queue) and the poller."""

    account: Account
    topic_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str

    def publish(self, task_id: str, status: str = "completed") -> dict[str, Any]:
        message = result_message(
            runtime="sdruntime", task_id=task_id, status=status,
            images=[f"s3://bucket/output/{task_id}/0.png"] if status == "completed" else [],
            location=f"s3://bucket/output/{task_id}", context={"k": "v"},
            error=None if status == "completed" else {"code": "x", "message": "y",
                                                      "details": []},
            timings={"total": 1.5}, outputs=[])
        self.account.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(message),
                                 MessageAttributes={"status": {"DataType": "String",
                                                               "StringValue": status}})
        return message

    def run(self, rounds: int = 20) -> int:
        """Poll until the queue gives nothing (or ``rounds`` batches); messages seen."""
        mapping = EventSource(
            uuid="webhooks", queue_arn=self.queue_arn, queue_url=self.queue_url, batch_size=5,
            function_name="sdaas-webhooks", handler="lambda_src.webhooks.handler",
            timeout_seconds=60, environment={}, report_batch_item_failures=True)
        poller = Poller(self.account.sqs, [mapping], "us-west-2", wait_seconds=0)
        seen = 0
        try:
            for _ in range(rounds):
                messages = poller.receive(mapping)
                if not messages:
                    return seen
                poller.invoke(mapping, webhooks.handler, messages)
                seen += len(messages)
            return seen
        finally:
            poller.stop()

    def dead_letters(self) -> list[dict[str, Any]]:
        found = self.account.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]

    def waiting(self) -> int:
        attributes = self.account.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


@pytest.fixture
def deliveries(account: Account, monkeypatch: pytest.MonkeyPatch) -> Deliveries:
    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(Name="sdaas-webhook-signing",
                                       SecretString=SECRET)["ARN"]
    topic_arn = account.sns.create_topic(Name="sdaas-results")["TopicArn"]
    dlq_url = account.sqs.create_queue(QueueName="sdaas-webhooks-dlq")["QueueUrl"]
    dlq_arn = _arn(account, dlq_url)
    queue_url = account.sqs.create_queue(QueueName="sdaas-webhooks", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": MAX_ATTEMPTS})})["QueueUrl"]
    queue_arn = _arn(account, queue_url)
    account.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                          Attributes={"RawMessageDelivery": "true"})
    for name, value in {"WEBHOOK_SECRET_ARN": secret_arn, "WEBHOOK_QUEUE_URL": queue_url,
                        "WEBHOOK_TIMEOUT_SECONDS": "5", "WEBHOOK_RETRY_BASE_SECONDS": "0",
                        "WEBHOOK_RETRY_MAX_SECONDS": "0",
                        "WEBHOOK_ALLOW_LOOPBACK": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(webhooks, "clock", lambda: NOW)
    monkeypatch.setattr(webhooks, "_secrets", {})
    return Deliveries(account, topic_arn, queue_url, queue_arn, dlq_url)


def _arn(account: Account, url: str) -> str:
    return account.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _submit(account: Account, task_id: str, hook: Any) -> None:
    response = account.post(t2i(task_id, webhook=hook))
    assert response.status == 202, response.body


# --- submit time ------------------------------------------------------------------------


def test_ingest_lists_every_webhook_problem_and_records_nothing(account):
    path = "task.metadata.webhook"
    body = t2i("bad-hook", webhook={"url": "http://user@10.0.0.1/", "events": ["x", "failed"],
                                    "extra": 1})
    response = account.post(body)
    assert response.status == 400
    assert response.detail_paths == [f"{path}.extra", f"{path}.url", f"{path}.events[0]"]
    assert account.item_count() == 0 and account.all_messages() == {}


@pytest.mark.parametrize("url", ["https://127.0.0.1/h", "https://169.254.169.254/latest",
                                 "https://10.0.0.1/", "https://[::1]/", "https://localhost/"])
def test_ingest_refuses_a_literal_private_receiver(account, url):
    response = account.post(t2i("private-hook", webhook={"url": url}))
    assert response.status == 400
    assert response.detail_paths == ["task.metadata.webhook.url"]


def test_ingest_records_the_checked_webhook(account):
    response = account.post(t2i("good-hook", webhook={"url": "https://hooks.example.com/x"}))
    assert response.status == 202
    assert account.record("good-hook")["webhook"] == {
        "url": "https://hooks.example.com/x", "events": ["completed", "failed", "cancelled"]}
    (message,) = account.messages("sdruntime")
    assert message.body["metadata"]["webhook"]["url"] == "https://hooks.example.com/x"
    status = account.get("good-hook")
    assert "webhook" not in json.dumps(status.body)


def test_loopback_receivers_need_the_local_mode_setting(account, monkeypatch):
    hook = {"url": "http://127.0.0.1:8080/h"}
    assert account.post(t2i("loop-1", webhook=hook)).status == 400
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK", "true")
    assert account.post(t2i("loop-2", webhook=hook)).status == 202


# --- delivered and verified -------------------------------------------------------------


def test_a_delivery_is_the_result_message_signed_as_documented(account, deliveries, receiver):
    _submit(account, "hook-1", {"url": receiver.url()})
    message = deliveries.publish("hook-1")
    assert deliveries.run() == 1
    (got,) = receiver.requests
    assert got.path == "/hooks/sd?token=abc"
    assert json.loads(got.body) == message
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Sdaas-Event"] == "completed"
    assert got.headers["X-Sdaas-Task-Id"] == "hook-1"
    assert got.headers["X-Sdaas-Delivery"]
    signature = got.headers["X-Sdaas-Signature"]
    assert signature.startswith(f"t={NOW},v1=")
    assert verify_webhook(SECRET, signature, got.body, now=NOW)
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


def test_the_documented_verifier_refuses_tampering_other_keys_and_old_deliveries(
        account, deliveries, receiver):
    _submit(account, "hook-2", {"url": receiver.url()})
    deliveries.publish("hook-2")
    deliveries.run()
    (got,) = receiver.requests
    signature = got.headers["X-Sdaas-Signature"]
    assert verify_webhook(SECRET, signature, got.body, now=NOW + 299)
    tampered = got.body.replace(b'"completed"', b'"failed"', 1)
    assert tampered != got.body
    assert not verify_webhook(SECRET, signature, tampered, now=NOW)
    assert not verify_webhook("another-secret", signature, got.body, now=NOW)
    assert not verify_webhook(SECRET, signature.replace(f"t={NOW}", f"t={NOW + 1}"),
                              got.body, now=NOW)
    assert not verify_webhook(SECRET, signature, got.body, now=NOW + 301)
    assert not verify_webhook(SECRET, "garbage", got.body, now=NOW)


def test_the_events_filter_decides_which_results_are_delivered(account, deliveries, receiver):
    _submit(account, "only-failed", {"url": receiver.url(), "events": ["failed"]})
    deliveries.publish("only-failed", "completed")
    assert deliveries.run() == 1
    assert receiver.requests == []
    deliveries.publish("only-failed", "failed")
    deliveries.run()
    assert [r.headers["X-Sdaas-Event"] for r in receiver.requests] == ["failed"]
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


def test_a_cancelled_task_is_delivered_when_asked_for(account, deliveries, receiver):
    _submit(account, "cancel-hook", {"url": receiver.url(), "events": ["cancelled"]})
    deliveries.publish("cancel-hook", "completed")
    deliveries.publish("cancel-hook", "cancelled")
    deliveries.run()
    (got,) = receiver.requests
    assert got.headers["X-Sdaas-Event"] == "cancelled"
    assert json.loads(got.body)["status"] == "cancelled"


def test_a_task_without_a_webhook_is_skipped(account, deliveries, receiver):
    response = account.post(t2i("no-hook"))
    assert response.status == 202
    deliveries.publish("no-hook")
    assert deliveries.run() == 1
    assert receiver.requests == []
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


# --- retries ------------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_then_dead_lettered(account, deliveries, receiver):
    receiver.statuses = [503]
    _submit(account, "hook-down", {"url": receiver.url()})
    message = deliveries.publish("hook-down")
    deliveries.run()
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert len({r.headers["X-Sdaas-Delivery"] for r in receiver.requests}) == 1
    assert deliveries.waiting() == 0
    assert deliveries.dead_letters() == [message]


def test_a_receiver_that_recovers_gets_the_delivery_once(account, deliveries, receiver):
    receiver.statuses = [500, 429, 200]
    _submit(account, "hook-flaky", {"url": receiver.url()})
    deliveries.publish("hook-flaky")
    deliveries.run()
    assert len(receiver.requests) == 3
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


@pytest.mark.parametrize("status", [400, 404, 410, 302])
def test_client_errors_and_redirects_are_not_retried(account, deliveries, receiver, status):
    receiver.statuses = [status]
    _submit(account, f"hook-{status}", {"url": receiver.url()})
    deliveries.publish(f"hook-{status}")
    deliveries.run()
    assert len(receiver.requests) == 1  # a redirect's target is never called either
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


def test_a_receiver_that_is_not_listening_is_retried(account, deliveries, receiver):
    _submit(account, "hook-gone", {"url": receiver.url()})
    receiver.stop()
    message = deliveries.publish("hook-gone")
    deliveries.run()
    assert deliveries.dead_letters() == [message]


def test_the_backoff_doubles_up_to_its_cap():
    cfg = config.webhook_config({"TASK_TABLE": "t", "WEBHOOK_SECRET_ARN": "a",
                                 "WEBHOOK_QUEUE_URL": "q"})
    assert [webhooks.backoff_seconds(n, cfg) for n in range(1, 8)] == [
        30, 60, 120, 240, 480, 900, 900]


def test_a_failed_delivery_is_hidden_for_its_backoff(account, deliveries, receiver,
                                                      monkeypatch):
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", "40")
    monkeypatch.setenv("WEBHOOK_RETRY_MAX_SECONDS", "900")
    receiver.statuses = [502]
    _submit(account, "hook-later", {"url": receiver.url()})
    deliveries.publish("hook-later")
    changed: list[dict[str, Any]] = []
    sqs = webhooks.aws.client("sqs")
    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility",
                             lambda params, **_: changed.append(params))
    deliveries.run()
    assert len(receiver.requests) == 1  # hidden for 40 s: not received again
    assert [c["VisibilityTimeout"] for c in changed] == [40]
    assert deliveries.waiting() == 1


# --- the SSRF guard at delivery ---------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254",
                                     "::ffff:127.0.0.1"])
def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
        account, deliveries, receiver, monkeypatch, address):
    monkeypatch.delenv("WEBHOOK_ALLOW_LOOPBACK")
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [address]

    monkeypatch.setattr(webhooks, "resolver", resolver)
    _submit(account, "hook-ssrf", {"url": f"https://hooks.example.com:{receiver.port}/x"})
    deliveries.publish("hook-ssrf")
    deliveries.run()
    assert asked == ["hooks.example.com"]
    assert receiver.requests == []
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []  # not retried


def test_one_private_address_among_public_ones_refuses_the_name(account, deliveries,
                                                                  receiver, monkeypatch):
    monkeypatch.delenv("WEBHOOK_ALLOW_LOOPBACK")
    monkeypatch.setattr(webhooks, "resolver", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    outcome = webhooks.post("https://hooks.example.com/x", b"{}", {}, timeout=1)
    assert outcome.kind == "refused" and "10.0.0.7" in outcome.detail


def test_the_connection_goes_to_the_address_that_was_checked(account, deliveries, receiver,
                                                              monkeypatch):
    """The name resolves (once) to the receiver's loopback address, allowed in local mode:
    the request reaches it with the name in ``Host``, so no second lookup decided where."""
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "resolver", resolver)
    account.put_record(id="pinned", status="completed",
                       webhook={"url": f"http://localhost:{receiver.port}/in",
                                "events": ["completed"]})
    deliveries.publish("pinned")
    deliveries.run()
    (got,) = receiver.requests
    assert got.headers["Host"] == f"localhost:{receiver.port}"
    assert lookups == ["localhost"]


def test_a_record_with_a_bad_url_is_refused_not_retried(account, deliveries, receiver):
    account.put_record(id="bad-url", status="completed",
                       webhook={"url": "ftp://example.com/x", "events": ["completed"]})
    deliveries.publish("bad-url")
    deliveries.run()
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


def test_a_dependency_outage_is_retried(account, deliveries, receiver):
    _submit(account, "hook-ddb", {"url": receiver.url()})
    account.faults.fail("dynamodb", "GetItem", times=1)
    deliveries.publish("hook-ddb")
    deliveries.run()
    assert len(receiver.requests) == 1  # the second attempt delivered it
    assert deliveries.waiting() == 0 and deliveries.dead_letters() == []


def test_https_is_pinned_to_the_checked_address_and_the_certificate_verified(
        account, deliveries, monkeypatch, tmp_path):
    cert, key = self_signed(tmp_path, "hooks.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    receiver = Receiver(tls=server_tls).start()
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "resolver", resolver)
    monkeypatch.setattr(webhooks, "tls_context", ssl.create_default_context(cafile=str(cert)))
    try:
        for task_id, host in (("tls-ok", "hooks.test"), ("tls-wrong-name", "other.test")):
            account.put_record(id=task_id, status="completed",
                               webhook={"url": f"https://{host}:{receiver.port}/in",
                                        "events": ["completed"]})
            deliveries.publish(task_id)
            deliveries.run()
        # The certificate is for hooks.test only: other.test is given up, not retried.
        assert [r.headers["X-Sdaas-Task-Id"] for r in receiver.requests] == ["tls-ok"]
        assert lookups == ["hooks.test", "other.test"]
        assert deliveries.waiting() == 0 and deliveries.dead_letters() == []
    finally:
        receiver.stop()


# --- the OpenAPI document ------------------------------------------------------------------

_urls = st.one_of(
    st.sampled_from(["https://hooks.example.com/x", "HTTPS://h.io", "http://h.io/", "https:///x",
                     "https:/x", "ftp://h.io", "https://u:p@h.io/", "https://h.io/#f",
                     "https://10.0.0.1/", "https://localhost/", "https://h.io/" + "a" * 2040,
                     "https://h.io/" + "a" * 2030, ""]),
    st.text(max_size=12).map(lambda tail: "https://" + tail), st.text(max_size=12),
    st.integers(), st.none())
_webhooks = st.one_of(
    st.fixed_dictionaries({}, optional={
        "url": _urls,
        "events": st.one_of(st.none(), st.text(max_size=3),
                            st.lists(st.sampled_from(["completed", "failed", "cancelled",
                                                      "done", 1]), max_size=4)),
        "extra": st.integers()}),
    st.none(), st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(value=_webhooks)
def test_the_documented_webhook_is_never_stricter_than_the_contract(value):
    """What the API accepts the document accepts; what the document refuses the API refuses
    (Schemathesis's negative cases). The document cannot say "no user name", "no literal
    private address" or "not localhost": it describes them and accepts more."""
    from task_contract.webhook import check_webhook

    from .openapi_support import schema_named

    problems = Problems()
    check_webhook(value, "webhook", problems)
    contract = not problems
    schema = schema_named("Webhook").is_valid(value)
    assert contract <= schema, value
