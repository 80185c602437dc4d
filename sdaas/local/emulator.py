"""A local AWS emulator: moto's server on loopback, with our fixes for known moto bugs.

Used by the test suite, by ``make local`` and by the benchmarks. moto is a development
dependency; nothing in the deployed system imports this module.

Every fix applied to moto lives in :func:`apply_moto_fixes`, each with the reason, so the
workarounds stay visible and removable once moto fixes the bug upstream.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sdaas.local.sqs_move_tasks import MessageMoveTasks

LOOPBACK = "127.0.0.1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

_fixes_applied = False
_fixes_lock = threading.Lock()


def apply_moto_fixes() -> list[str]:
    """Patch moto (in this process) for the bugs that break a no-drift Terraform plan.

    Returns the names of the fixes applied, so callers can log them.
    """
    global _fixes_applied  # noqa: PLW0603 - process-wide, idempotent patching
    with _fixes_lock:
        if _fixes_applied:
            return list(_APPLIED)
        for fix in _FIXES:
            fix()
            _APPLIED.append(fix.__name__)
        _fixes_applied = True
        return list(_APPLIED)


_APPLIED: list[str] = []


def _sqs_keep_policy_when_not_given() -> None:
    """moto 5.2: SetQueueAttributes without ``Policy`` wipes the queue policy.

    AWS leaves attributes that a call does not name untouched. Terraform's aws_sqs_queue
    sets attributes without Policy (the policy is its own resource), so without this fix
    every second plan wants to re-create the aws_sqs_queue_policy.
    """
    from moto.sqs.models import Queue  # noqa: PLC0415

    original = Queue._set_attributes

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        had_policy = getattr(self, "policy", None)
        original(self, attributes, now)
        if "Policy" not in attributes and had_policy is not None:
            self.policy = had_policy

    Queue._set_attributes = _set_attributes


def _sqs_aws_shaped_redrive_attributes() -> None:
    """moto 5.2: RedrivePolicy comes back as ``json.dumps`` with spaces, and
    RedriveAllowPolicy is accepted but never returned.

    AWS returns both as compact JSON. With moto's spacing Terraform sees a changed
    redrive_policy on every plan; without RedriveAllowPolicy the provider waits forever
    for aws_sqs_queue_redrive_allow_policy to converge.
    """
    from moto.sqs.models import Queue  # noqa: PLC0415

    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.append("RedriveAllowPolicy")  # asked for by name by Terraform
        Queue.redrive_allow_policy = None
    original = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result = original.fget(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            parsed = json.loads(allow) if isinstance(allow, str) else allow
            result["RedriveAllowPolicy"] = json.dumps(parsed, separators=(",", ":"))
        else:
            # Setting it to "" removes it, as on AWS (Terraform waits for that on destroy).
            result.pop("RedriveAllowPolicy", None)
        return result

    Queue.attributes = property(attributes)


def load_aws_managed_policies() -> int:
    """Make AWS managed IAM policies (AmazonEKSClusterPolicy, ...) exist in this process.

    moto creates them only when ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is true at the moment an
    account's IAM backend is first used; backends are per process, so an account touched
    earlier without it lacks them. This sets the variable for accounts to come and adds the
    policies to the IAM backends that already exist. Returns the number added.
    """
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    from moto.iam.models import iam_backends  # noqa: PLC0415

    added = 0
    for account_backends in iam_backends.values():
        for backend in account_backends.values():
            for policy in backend._init_aws_policies():
                if policy.arn not in backend.managed_policies:
                    backend.managed_policies[policy.arn] = policy
                    added += 1
    return added


def _lambda_keep_kms_key_and_logging_config() -> None:
    """moto 5.2: Lambda drops ``KMSKeyArn`` and ``LoggingConfig`` from a function.

    AWS stores and returns both; without them every plan wants to set them again.
    """
    from moto.awslambda.models import LambdaFunction  # noqa: PLC0415

    original_init = LambdaFunction.__init__
    original_get = LambdaFunction.get_configuration
    original_update = LambdaFunction.update_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any,
                 **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self._sd_kms_key_arn = spec.get("KMSKeyArn")
        self._sd_logging_config = spec.get("LoggingConfig")

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original_get(self, *args, **kwargs)
        if getattr(self, "_sd_kms_key_arn", None):
            config["KMSKeyArn"] = self._sd_kms_key_arn
        if getattr(self, "_sd_logging_config", None):
            config["LoggingConfig"] = self._sd_logging_config
        return config

    def update_configuration(self: Any, updates: dict[str, Any]) -> dict[str, Any]:
        if "KMSKeyArn" in updates:
            self._sd_kms_key_arn = updates["KMSKeyArn"] or None
        if "LoggingConfig" in updates:
            self._sd_logging_config = updates["LoggingConfig"]
        return original_update(self, updates)

    LambdaFunction.__init__ = __init__
    LambdaFunction.get_configuration = get_configuration
    LambdaFunction.update_configuration = update_configuration


def _denies_only_insecure_transport(statement: Any) -> bool:
    """A statement that applies only when ``aws:SecureTransport`` is false."""
    if not isinstance(statement, dict):
        return False
    conditions = statement.get("Condition") or {}
    for operator in ("Bool", "BoolIfExists"):
        value = (conditions.get(operator) or {}).get("aws:SecureTransport")
        values = value if isinstance(value, list) else [value]
        if value is not None and [str(v).lower() for v in values] == ["false"]:
            return True
    return False


def _s3_bucket_policy_secure_transport() -> None:
    """moto 5.2: bucket policies are evaluated without their ``Condition``.

    So the standard TLS-only guard (Deny ``s3:*`` when ``aws:SecureTransport`` is false,
    which ``ServerlessIngress`` puts on its output bucket) denies every object read and
    write, although on AWS, over HTTPS, the statement never applies. The emulator stands in
    for AWS's HTTPS endpoints (plain HTTP on loopback is a local artifact), so a statement
    that applies only to insecure transport is left out of the evaluation; every other
    statement is evaluated as moto does.
    """
    from moto.iam.access_control import IAMPolicy  # noqa: PLC0415
    from moto.s3.models import FakeBucket  # noqa: PLC0415

    original = FakeBucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return original(self, action, resource)
        document = json.loads(self.policy.decode() if isinstance(self.policy, bytes)
                              else self.policy)
        statements = document.get("Statement")
        statements = statements if isinstance(statements, list) else [statements]
        kept = [s for s in statements if not _denies_only_insecure_transport(s)]
        if len(kept) == len(statements):
            return original(self, action, resource)
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(
            action, resource)

    FakeBucket.get_permission = get_permission


def _lambda_event_source_mappings_left_to_a_poller() -> None:
    """moto 5.2: an SQS event source mapping makes every SendMessage (and every move to a
    dead-letter queue) receive the queue's messages and run the function in Docker.

    Here there is no Docker, and that receive inside another request counts a receive on
    the messages and deletes or releases them whatever happened. The mapping is kept (Get,
    List, Update and Delete work, so Terraform manages it) but never invoked by moto; local
    mode's event source poller (``sdaas.local.event_sources``) does the Lambda service's
    job, with the function's real handler.
    """
    from moto.awslambda.models import LambdaBackend  # noqa: PLC0415
    from moto.sqs.models import sqs_backends  # noqa: PLC0415

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.queue_arn == esm.event_source_arn:
                queue.lambda_event_source_mappings.pop(esm.function_arn, None)
        return esm

    LambdaBackend.create_event_source_mapping = create_event_source_mapping


def _sqs_unknown_actions_answered_as_aws() -> None:
    """moto 5.2: an SQS action moto does not implement raises inside the server, which
    answers a bare 500 page (and the SDKs retry it as a server error).

    AWS answers an action it does not know with a 400 client error, ``UnknownOperationException``
    (JSON protocol) or ``InvalidAction`` (query protocol), so a client can tell "not
    supported here" from "failed": ``sdctl dlq redrive`` falls back to moving messages one by
    one on an endpoint without message move tasks.
    """
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    original = SQSResponse.call_action

    def call_action(self: Any) -> Any:
        try:
            return original(self)
        except NotImplementedError as exc:
            if self.headers.get("X-Amz-Target"):
                return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
                    {"__type": "com.amazonaws.sqs#UnknownOperationException",
                     "message": str(exc)})
            body = ("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
                    f"<Message>{exc}</Message></Error></ErrorResponse>")
            return 400, {"Content-Type": "text/xml"}, body

    SQSResponse.call_action = call_action


_FIXES: list[Any] = [
    _sqs_keep_policy_when_not_given,
    _sqs_aws_shaped_redrive_attributes,
    _lambda_keep_kms_key_and_logging_config,
    _s3_bucket_policy_secure_transport,
    _lambda_event_source_mappings_left_to_a_poller,
    _sqs_unknown_actions_answered_as_aws,
]


class _LatencyMiddleware:
    """Delays every request by a fixed time, to stand in for real AWS round trips."""

    def __init__(self, app: Any, latency_seconds: float) -> None:
        self._app = app
        self._latency = latency_seconds

    def __call__(self, environ: dict, start_response: Any) -> Any:
        time.sleep(self._latency)
        return self._app(environ, start_response)


@dataclass
class Emulator:
    """moto's server on a loopback port, started in a background thread of this process.

    ``Emulator().start()`` picks a free port; ``endpoint`` is the URL to give to boto3
    (``endpoint_url``), to the agent (``AWS_ENDPOINT_URL``) and to Terraform's provider
    ``endpoints``. ``latency_seconds`` adds a fixed delay to every call (benchmarks).
    ``wrap_app`` wraps the WSGI application (for example to inject faults in tests);
    ``log_requests=False`` silences the per-request log lines. ``message_move_tasks``
    adds SQS's ``StartMessageMoveTask`` and ``ListMessageMoveTasks``, which moto lacks
    (:mod:`sdaas.local.sqs_move_tasks`); ``False`` leaves moto as it is.
    """

    host: str = LOOPBACK
    port: int = 0
    latency_seconds: float = 0.0
    wrap_app: Any = None
    log_requests: bool = True
    message_move_tasks: bool = True
    _server: Any = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - dev-only, heavy
            DomainDispatcherApplication,
            create_backend_app,
        )
        from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: PLC0415

        apply_moto_fixes()
        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.message_move_tasks:
            app = MessageMoveTasks(app)
        if self.wrap_app is not None:
            app = self.wrap_app(app)
        if self.latency_seconds > 0:
            app = _LatencyMiddleware(app, self.latency_seconds)
        handler: Any = WSGIRequestHandler
        if not self.log_requests:

            class _QuietHandler(WSGIRequestHandler):
                def log_request(self, *args: Any, **kwargs: Any) -> None:
                    return

            handler = _QuietHandler
        self._server = make_server(self.host, self.port, app, threaded=True,
                                   request_handler=handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        return self

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        import requests  # noqa: PLC0415

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
