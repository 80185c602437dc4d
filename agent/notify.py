"""Publishing the result message to the result topic.

The message (its shape, and its rebuilding from a final task record after a crash) is the
task contract's: ``task_contract.result``.
"""

from __future__ import annotations

from typing import Any

from task_contract.result import message_attributes, message_text


class ResultPublisher:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, message: dict[str, Any]) -> str:
        answer = self._sns.publish(
            TopicArn=self.topic_arn,
            Message=message_text(message),
            MessageAttributes=message_attributes(message),
        )
        return str(answer.get("MessageId", ""))
