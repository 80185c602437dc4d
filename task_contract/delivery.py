"""How a runtime queue's message is held while its task runs: the long poll, the visibility
timeout the agent sets, and the heartbeat that extends it (the agent's defaults, which the
constructs check the chart values against)."""

from __future__ import annotations

# Seconds a receive waits for a message: the runtime queues' ``ReceiveMessageWaitTimeSeconds``
# and the agent's long poll (the SQS maximum).
LONG_POLL_SECONDS = 20
# The visibility timeout the agent sets on a received message (AGENT_VISIBILITY_TIMEOUT_SECONDS).
VISIBILITY_TIMEOUT_SECONDS = 120
# The longest default heartbeat (AGENT_HEARTBEAT_SECONDS): a quarter of the visibility
# timeout when that is shorter.
HEARTBEAT_SECONDS = 30.0
# How often the agent reads the record of a task it runs to see whether it was cancelled
# (AGENT_CANCEL_POLL_SECONDS): one read a running task per interval, whatever the runtime.
CANCEL_POLL_SECONDS = 2.0


def default_heartbeat_seconds(visibility_timeout_seconds: float) -> float:
    """The agent's heartbeat when AGENT_HEARTBEAT_SECONDS is not set."""
    return min(HEARTBEAT_SECONDS, visibility_timeout_seconds / 4)


def heartbeat_fits(heartbeat_seconds: float, visibility_timeout_seconds: float) -> bool:
    """At most half the visibility timeout, so one late heartbeat cannot let the message
    reappear while its task runs."""
    return heartbeat_seconds * 2 <= visibility_timeout_seconds
