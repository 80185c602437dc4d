"""One runtime's task queue: the queue, its dead-letter intake and dead-letter queue, the
filtered subscription to the input topic and the queue policies.

A message the task queue gives up on (``maxReceiveCount`` receives without a delete) moves
to the dead-letter *intake*, which the dead-letter consumer Lambda reads (an event source
mapping deletes what the function handled); the consumer fails the task, publishes its
result and sends the message on to the dead-letter *queue*, where it stays for inspection
and redrive. Should the consumer fail on a message ``DEAD_LETTER_CONSUMER_ATTEMPTS`` times,
the intake's own redrive policy moves it to the dead-letter queue unhandled: nothing loops,
nothing is lost.
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


class RuntimeQueue(Construct):
    """One runtime's queue, dead-letter intake and queue, filtered subscription and queue
    policies."""

    def __init__(self, scope: Construct, id_: str, *, kms_key_arn: str, input_topic_arn: str,
                 spec: RuntimeSpec, props: ServerlessIngressProps) -> None:
        super().__init__(scope, id_)
        base = f"{props.name}-{spec.name}"
        self.dlq = aws.sqs_queue.SqsQueue(
            self, "DeadLetterQueue",
            name=f"{base}-dlq",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=props.dlq_message_retention_seconds,
        )
        self.intake = aws.sqs_queue.SqsQueue(
            self, "DeadLetterIntake",
            name=f"{base}-dlq-intake",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            visibility_timeout_seconds=DEAD_LETTER_INTAKE_VISIBILITY_SECONDS,
            message_retention_seconds=props.dlq_message_retention_seconds,
            redrive_policy=Fn.jsonencode({
                "deadLetterTargetArn": self.dlq.arn,
                "maxReceiveCount": intake_max_receive_count(props.max_receive_count)}),
        )
        self.queue = aws.sqs_queue.SqsQueue(
            self, "Queue",
            name=f"{base}-tasks",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=LONG_POLL_SECONDS,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_seconds,
            redrive_policy=Fn.jsonencode(
                {"deadLetterTargetArn": self.intake.arn,
                 "maxReceiveCount": props.max_receive_count}
            ),
        )
        for key, target, source in (("RedriveAllow", self.dlq, self.intake),
                                    ("IntakeRedriveAllow", self.intake, self.queue)):
            aws.sqs_queue_redrive_allow_policy.SqsQueueRedriveAllowPolicy(
                self, key,
                queue_url=target.url,
                redrive_allow_policy=Fn.jsonencode(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [source.arn]}
                ),
            )
        for key, queue in (("QueuePolicy", self.queue), ("DeadLetterQueuePolicy", self.dlq),
                           ("DeadLetterIntakePolicy", self.intake)):
            statements = [deny_insecure_transport((queue.arn,), "sqs")]
            if queue is self.queue:
                statements.insert(0, Statement(
                    sid="AllowInputTopic",
                    actions=("sqs:SendMessage",),
                    resources=(queue.arn,),
                    principals=(service_principal("sns.amazonaws.com"),),
                    conditions=(Condition(test="ArnEquals", variable="aws:SourceArn",
                                          values=(input_topic_arn,)),),
                ))
            doc = aws.data_aws_iam_policy_document.DataAwsIamPolicyDocument(
                self, f"{key}Document", statement=render_statements(statements)
            )
            aws.sqs_queue_policy.SqsQueuePolicy(self, key, queue_url=queue.url, policy=doc.json)
        aws.sns_topic_subscription.SnsTopicSubscription(
            self, "Subscription",
            topic_arn=input_topic_arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            filter_policy=json.dumps({"runtime": [spec.name]}),
            filter_policy_scope="MessageAttributes",
            raw_message_delivery=False,
        )

