"""The EventBridge rules that feed Karpenter's interruption queue."""

from __future__ import annotations

from typing import Any

# EventBridge rules feeding the interruption queue: one per kind of event, with disjoint
# patterns (different source or detail-type), so each event is delivered once.
INTERRUPTION_RULES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("SpotInterruptionRule", "spot-interruption",
     "Karpenter: EC2 spot interruption warnings (2 minutes' notice)",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
    ("RebalanceRule", "rebalance",
     "Karpenter: EC2 instance rebalance recommendations",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]}),
    ("ScheduledChangeRule", "scheduled-change",
     "Karpenter: AWS Health scheduled changes to EC2 instances",
     {"source": ["aws.health"], "detail-type": ["AWS Health Event"],
      "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}}),
    ("InstanceStateChangeRule", "instance-state-change",
     "Karpenter: EC2 instances stopping or terminating",
     {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
      "detail": {"state": ["stopping", "stopped", "shutting-down", "terminated"]}}),
)

