"""The webhook deliverer: result topic -> delivery queue -> deliverer Lambda, its signing
secret, its dead-letter queue and alarm (docs/contracts.md, "Webhooks").

Retries go through an SQS queue rather than SNS's own delivery policy: SNS retries an
HTTP(S) subscription only for its own endpoint, not for a Lambda's outcome, and a Lambda
subscribed to SNS gets two async retries at most. The queue gives each failed delivery a
backoff the function chooses (the message's visibility timeout, doubling per attempt),
``webhook_max_attempts`` attempts, and a dead-letter queue holding what never got through.

The signing secret is a Secrets Manager secret encrypted with the stack's key; its value is
generated once by Secrets Manager itself (the AWS provider's
``aws_secretsmanager_random_password``: no other provider, nothing generated on the
machine running Terraform) and kept afterwards (``ignore_changes``: the data source draws a
new value on every plan). Rotating it is putting a new value on the secret; the deliverer
picks it up within five minutes.
"""

from __future__ import annotations

from constructs_lib._cdktf import Construct, TerraformAsset, TerraformResourceLifecycle
from constructs_lib._providers import aws
from constructs_lib.alarms import metric_alarm
from constructs_lib.iam import Statement
from constructs_lib.ingress.functions import lambda_function
from constructs_lib.ingress.props import ServerlessIngressProps
from constructs_lib.ingress.queues import SubscribedQueue

FUNCTION_TIMEOUT_SECONDS = 60  # a batch of BATCH_SIZE deliveries of REQUEST_TIMEOUT_SECONDS
REQUEST_TIMEOUT_SECONDS = 10
BATCH_SIZE = 5
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 900
SECRET_CHARACTERS = 64


class WebhookDeliverer(Construct):
    """The deliverer of ``metadata.webhook`` callbacks for one ServerlessIngress."""

    def __init__(self, scope: Construct, id_: str, *, props: ServerlessIngressProps,
                 asset: TerraformAsset, key_arn: str, result_topic_arn: str,
                 table_name: str, table_arn: str) -> None:
        super().__init__(scope, id_)
        name = props.name
        self.secret = aws.secretsmanager_secret.SecretsmanagerSecret(
            self, "SigningSecret", name=f"{name}-webhook-signing",
            description=f"{name}: HMAC-SHA256 key signing webhook deliveries",
            kms_key_id=key_arn, recovery_window_in_days=7,
        )
        generated = aws.data_aws_secretsmanager_random_password.\
            DataAwsSecretsmanagerRandomPassword(
                self, "SigningSecretValue", password_length=SECRET_CHARACTERS,
                exclude_punctuation=True)
        aws.secretsmanager_secret_version.SecretsmanagerSecretVersion(
            self, "SigningSecretVersion", secret_id=self.secret.id,
            secret_string=generated.random_password,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["secret_string"]),
        )
        # Six function timeouts, as AWS advises for a queue feeding a Lambda.
        self.deliveries = SubscribedQueue(
            self, "Deliveries", base=f"{name}-webhooks", kms_key_arn=key_arn,
            topic_arn=result_topic_arn,
            visibility_timeout_seconds=6 * FUNCTION_TIMEOUT_SECONDS,
            max_receive_count=props.webhook_max_attempts, props=props, raw=True,
            receive_wait_seconds=0, topic_sid="AllowResultTopic",
        )
        queue = self.deliveries.queue
        self.function = lambda_function(
            self, "Deliverer", "webhooks", asset, props=props, key_arn=key_arn,
            timeout=FUNCTION_TIMEOUT_SECONDS,
            environment={
                "TASK_TABLE": table_name,
                "WEBHOOK_SECRET_ARN": self.secret.arn,
                "WEBHOOK_QUEUE_URL": queue.url,
                "WEBHOOK_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS),
                "WEBHOOK_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
                "WEBHOOK_RETRY_MAX_SECONDS": str(RETRY_MAX_SECONDS),
                "LOG_LEVEL": "INFO",
            },
            statements=[
                Statement(sid="ReadTasks", actions=("dynamodb:GetItem",),
                          resources=(table_arn,)),
                Statement(sid="ReadSigningSecret", actions=("secretsmanager:GetSecretValue",),
                          resources=(self.secret.arn,)),
                Statement(sid="ConsumeDeliveries",
                          actions=("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
                          resources=(queue.arn,)),
                Statement(sid="UseKey", actions=("kms:Decrypt",), resources=(key_arn,)),
            ],
        )
        aws.lambda_event_source_mapping.LambdaEventSourceMapping(
            self, "EventSource", event_source_arn=queue.arn,
            function_name=self.function.arn, batch_size=BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
        )
        actions = [props.alarm_topic_arn] if props.alarm_topic_arn else None
        self.alarm = metric_alarm(
            self, "DeadLetterAlarm", alarm_name=f"{name}-webhooks-dlq-not-empty",
            description="Webhook deliveries gave up after every retry (dead-letter queue)",
            namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.deliveries.dlq.name}, statistic="Maximum",
            threshold=0, actions=actions,
        )
