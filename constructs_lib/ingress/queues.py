"""One runtime's task queue: the queue, its dead-letter queue, the filtered subscription
to the input topic and the queue policies."""

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
from constructs_lib.ingress.props import RuntimeSpec, ServerlessIngressProps
from task_contract import LONG_POLL_SECONDS


class SubscribedQueue(Construct):
    """A queue, its dead-letter queue, its subscription to ``topic_arn`` and queue policies.

    ``filter_policy`` (message attributes) selects what the queue receives; ``raw`` delivers
    the message itself instead of the SNS envelope."""

    def __init__(self, scope: Construct, id_: str, *, base: str, kms_key_arn: str,
                 topic_arn: str, visibility_timeout_seconds: int, max_receive_count: int,
                 props: ServerlessIngressProps, filter_policy: dict | None = None,
                 raw: bool = False, receive_wait_seconds: int = LONG_POLL_SECONDS,
                 topic_sid: str = "AllowInputTopic") -> None:
        super().__init__(scope, id_)
        self.dlq = aws.sqs_queue.SqsQueue(
            self, "DeadLetterQueue",
            name=f"{base}-dlq",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=props.dlq_message_retention_seconds,
        )
        self.queue = aws.sqs_queue.SqsQueue(
            self, "Queue",
            name=f"{base}-tasks" if filter_policy is not None else base,
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=receive_wait_seconds,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_seconds,
            redrive_policy=Fn.jsonencode(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": max_receive_count}
            ),
        )
        aws.sqs_queue_redrive_allow_policy.SqsQueueRedriveAllowPolicy(
            self, "RedriveAllow",
            queue_url=self.dlq.url,
            redrive_allow_policy=Fn.jsonencode(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
        )
        for key, queue in (("QueuePolicy", self.queue), ("DeadLetterQueuePolicy", self.dlq)):
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
    """One runtime's queue, dead-letter queue, filtered subscription and queue policy."""

    def __init__(self, scope: Construct, id_: str, *, kms_key_arn: str, input_topic_arn: str,
                 spec: RuntimeSpec, props: ServerlessIngressProps) -> None:
        super().__init__(
            scope, id_, base=f"{props.name}-{spec.name}", kms_key_arn=kms_key_arn,
            topic_arn=input_topic_arn,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            max_receive_count=props.max_receive_count, props=props,
            filter_policy={"runtime": [spec.name]})
