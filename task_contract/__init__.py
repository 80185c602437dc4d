"""The task contract: the rules the ingest Lambda, the queue agent and the constructs share.

Standard library only: it is bundled into the Lambda package and the agent image, and the
library imports it for the names and limits its resources must agree with.
"""

from __future__ import annotations

# Seconds a receive waits for a message: the runtime queues' ``ReceiveMessageWaitTimeSeconds``
# and the agent's long poll (the SQS maximum).
LONG_POLL_SECONDS = 20
# Key prefix of claim-checked request bodies in the output bucket: written by ingest only,
# never an output prefix.
CLAIM_CHECK_PREFIX = "_requests/"

__all__ = ["CLAIM_CHECK_PREFIX", "LONG_POLL_SECONDS"]
