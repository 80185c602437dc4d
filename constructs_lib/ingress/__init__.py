"""``ServerlessIngress``: the AWS front door of the service.

Creates
    * a REST API (regional): ``POST /v1alpha2``, ``POST /v1alpha1``,
      ``GET /v1alpha2/tasks/{id}``; API key required; a usage plan with per-key rate and
      burst; a stage with JSON access logs, metrics, X-Ray and method throttling; JSON
      gateway error responses;
    * the ``ingest`` and ``status`` Lambda functions (``lambda_src/``, deterministic zip,
      Python 3.12, X-Ray, reserved concurrency, log groups with retention, one
      least-privilege role each);
    * the input SNS topic and, per runtime, an SQS queue, a subscription filtered on the
      ``runtime`` message attribute and a queue policy that admits only that topic; its
      dead-letter intake and dead-letter queue;
    * the ``dead-letters`` Lambda function, the consumer of every dead-letter intake (an
      event source mapping each): it marks a dead-lettered task ``failed`` (code
      ``dead_lettered``), publishes its result once and keeps the message in the
      dead-letter queue for inspection and redrive (``sdctl dlq``);
    * the output bucket (public access blocked, SSE-KMS with a bucket key, TLS only,
      lifecycle), which also holds claim-checked request bodies;
    * the task table (DynamoDB on demand, TTL, point-in-time recovery, KMS);
    * the result SNS topic;
    * alarms: each DLQ not empty, each queue's oldest message too old, ingest errors,
      dead-letter consumer errors, API 5xx;
    * one customer-managed KMS key for all of the above.

Example::

    ingress = ServerlessIngress(stack, "Ingress", props=ServerlessIngressProps(
        name="sdaas",
        runtimes=(RuntimeSpec(name="sdruntime", type="sdwebui",
                              models=("sd_xl_turbo_1.0.safetensors",)),),
    ))
    ingress.grant_consume(runtime_role, "sdruntime")
"""

from __future__ import annotations

from constructs_lib.ingress.construct import ServerlessIngress
from constructs_lib.ingress.props import (
    API_MAX_BODY_BYTES,
    SNS_MAX_BYTES,
    RuntimeQueueRef,
    RuntimeSpec,
    RuntimeType,
    ServerlessIngressProps,
)
from task_contract import CLAIM_CHECK_PREFIX

__all__ = [
    "API_MAX_BODY_BYTES",
    "CLAIM_CHECK_PREFIX",
    "SNS_MAX_BYTES",
    "RuntimeQueueRef",
    "RuntimeSpec",
    "RuntimeType",
    "ServerlessIngress",
    "ServerlessIngressProps",
]
