"""Queues subscribed to a topic: a runtime's task queue and the webhook delivery queue, each
with its dead-letter queue, its subscription and its queue policies.

A runtime's task queue has a dead-letter *intake* between it and its dead-letter queue: a
message the task queue gives up on (``maxReceiveCount`` receives without a delete) moves to
the intake, which the dead-letter consumer Lambda reads (an event source mapping deletes what
the function handled); the consumer fails the task, publishes its result and sends the
message on to the dead-letter *queue*, where it stays for inspection and redrive. Should the
consumer fail on a message ``DEAD_LETTER_CONSUMER_ATTEMPTS`` times, the intake's own redrive
policy moves it to the dead-letter queue unhandled: nothing loops, nothing is lost.
"""

from __future__ import annotations

import json

from constructs_lib._cdktf import (
    Construct,
    Fn,
)
from constructs_lib._providers import aws
from constructs_lib.iam import (
    Condition,
    Statement,
    deny_insecure_transport,
    render_statements,
    service_principal,
)
from constructs_lib.ingress.props import (
    DEAD_LETTER_CONSUMER_ATTEMPTS,
    DEAD_LETTER_INTAKE_VISIBILITY_SECONDS,
    RuntimeSpec,
    ServerlessIngressProps,
)
from task_contract import LONG_POLL_SECONDS


def intake_max_receive_count(max_receive_count: int) -> int:
    """The intake's ``maxReceiveCount``: the consumer gets ``DEAD_LETTER_CONSUMER_ATTEMPTS``
    receives of a message even where SQS carries the task queue's receive count along with
    the message (moto does; the SQS documentation does not say), at most SQS's 1000."""
    return min(1000, max_receive_count + DEAD_LETTER_CONSUMER_ATTEMPTS)


class SubscribedQueue(Construct):
    """A queue, its dead-letter queue (behind a dead-letter intake when
    ``dead_letter_intake``), its subscription to ``topic_arn`` and queue policies.

    ``filter_policy`` (message attributes) selects what the queue receives; ``raw`` delivers
    the message itself instead of the SNS envelope."""

    def __init__(self, scope: Construct, id_: str, *, base: str, kms_key_arn: str,
                 topic_arn: str, visibility_timeout_seconds: int, max_receive_count: int,
                 props: ServerlessIngressProps, filter_policy: dict | None = None,
                 raw: bool = False, receive_wait_seconds: int = LONG_POLL_SECONDS,
                 topic_sid: str = "AllowInputTopic", dead_letter_intake: bool = False) -> None:
        super().__init__(scope, id_)
        self.dlq = aws.sqs_queue.SqsQueue(
            self, "DeadLetterQueue",
            name=f"{base}-dlq",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=props.dlq_message_retention_seconds,
        )
        self.intake: aws.sqs_queue.SqsQueue | None = None
        if dead_letter_intake:
            self.intake = aws.sqs_queue.SqsQueue(
                self, "DeadLetterIntake",
                name=f"{base}-dlq-intake",
                kms_master_key_id=kms_key_arn,
                kms_data_key_reuse_period_seconds=300,
                visibility_timeout_seconds=DEAD_LETTER_INTAKE_VISIBILITY_SECONDS,
                message_retention_seconds=props.dlq_message_retention_seconds,
                redrive_policy=Fn.jsonencode({
                    "deadLetterTargetArn": self.dlq.arn,
                    "maxReceiveCount": intake_max_receive_count(max_receive_count)}),
            )
        first_stop = self.intake if self.intake is not None else self.dlq
        self.queue = aws.sqs_queue.SqsQueue(
            self, "Queue",
            name=f"{base}-tasks" if filter_policy is not None else base,
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=receive_wait_seconds,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_seconds,
            redrive_policy=Fn.jsonencode(
                {"deadLetterTargetArn": first_stop.arn, "maxReceiveCount": max_receive_count}
            ),
        )
        redrives = [("RedriveAllow", self.dlq, self.intake or self.queue)]
        if self.intake is not None:
            redrives.append(("IntakeRedriveAllow", self.intake, self.queue))
        for key, target, source in redrives:
            aws.sqs_queue_redrive_allow_policy.SqsQueueRedriveAllowPolicy(
                self, key,
                queue_url=target.url,
                redrive_allow_policy=Fn.jsonencode(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [source.arn]}
                ),
            )
        policies = [("QueuePolicy", self.queue), ("DeadLetterQueuePolicy", self.dlq)]
        if self.intake is not None:
            policies.append(("DeadLetterIntakePolicy", self.intake))
        for key, queue in policies:
            statements = [deny_insecure_transport((queue.arn,), "sqs")]
            if queue is self.queue:
                statements.insert(0, Statement(
                    sid=topic_sid,
                    actions=("sqs:SendMessage",),
                    resources=(queue.arn,),
                    principals=(service_principal("sns.amazonaws.com"),),
                    conditions=(Condition(test="ArnEquals", variable="aws:SourceArn",
                                          values=(topic_arn,)),),
                ))
            doc = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
                self, f"{key}Document", statement=render_statements(statements)
            )
            aws.sqs_queue_policy.SqsQueuePolicy(self, key, queue_url=queue.url, policy=doc.json)
        options = {} if filter_policy is None else {
            "filter_policy": json.dumps(filter_policy),
            "filter_policy_scope": "MessageAttributes"}
        aws.sns_topic_subscription.SnsTopicSubscription(
            self, "Subscription",
            topic_arn=topic_arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=raw,
            **options,
        )


class RuntimeQueue(SubscribedQueue):
    """One runtime's queue, dead-letter intake and queue, filtered subscription and queue
    policies."""

    intake: aws.sqs_queue.SqsQueue

    def __init__(self, scope: Construct, id_: str, *, kms_key_arn: str, input_topic_arn: str,
                 spec: RuntimeSpec, props: ServerlessIngressProps) -> None:
        super().__init__(
            scope, id_, base=f"{props.name}-{spec.name}", kms_key_arn=kms_key_arn,
            topic_arn=input_topic_arn,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            max_receive_count=props.max_receive_count, props=props,
            filter_policy={"runtime": [spec.name]}, dead_letter_intake=True)
