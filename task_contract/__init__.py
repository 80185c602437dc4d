"""The task contract: the rules the ingest Lambda, the queue agent and the constructs share.

Standard library only: it is bundled into the Lambda package and the agent image, and the
library imports it for the names and limits its resources must agree with. One module per
concern:

* :mod:`~task_contract.metadata`: task ids, output prefixes, task types per runtime type;
* :mod:`~task_contract.content`: what SD WebUI bodies and ComfyUI workflows must hold;
* :mod:`~task_contract.legacy`: the v1alpha1 routing keys;
* :mod:`~task_contract.task`: the whole check of a task, v1alpha2 or v1alpha1;
* :mod:`~task_contract.layout`: output bucket keys and claim checks;
* :mod:`~task_contract.record`: task-record attribute names, status values, value formats;
* :mod:`~task_contract.result`: the result message;
* :mod:`~task_contract.delivery`: long poll, visibility timeout and heartbeat defaults;
* :mod:`~task_contract.envelope`: the SNS envelope of queued messages;
* :mod:`~task_contract.deadletter`: tasks whose message reached a dead-letter queue;
* :mod:`~task_contract.webhook`: ``metadata.webhook`` and the signature of a delivery;
* :mod:`~task_contract.netguard`: the SSRF guard of every URL the service connects to;
* :mod:`~task_contract.jsontext`, :mod:`~task_contract.logformat`,
  :mod:`~task_contract.problems`: strict JSON, the log line, problem lists.
"""

from __future__ import annotations

from task_contract.delivery import LONG_POLL_SECONDS
from task_contract.layout import CLAIM_CHECK_PREFIX, DEFAULT_PREFIX

__all__ = ["CLAIM_CHECK_PREFIX", "DEFAULT_PREFIX", "LONG_POLL_SECONDS"]
