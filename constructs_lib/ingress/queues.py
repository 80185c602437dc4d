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


class RuntimeQueue(Construct):
    """One runtime's queue, dead-letter queue, filtered subscription and queue policy."""

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
        self.queue = aws.sqs_queue.SqsQueue(
            self, "Queue",
            name=f"{base}-tasks",
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            receive_wait_time_seconds=LONG_POLL_SECONDS,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_seconds,
            redrive_policy=Fn.jsonencode(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": props.max_receive_count}
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

