"""CloudWatch alarms the library creates: one shape, the thresholds and metrics vary.

Every alarm evaluates one-minute periods, fires when the statistic exceeds the threshold,
treats missing data as fine (an idle service emits none), and notifies the same actions
when it fires and when it recovers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from constructs_lib._cdktf import Construct
from constructs_lib._providers import aws

PERIOD_SECONDS = 60


def metric_alarm(scope: Construct, id_: str, *, alarm_name: str, description: str,
                 namespace: str, metric_name: str, dimensions: Mapping[str, str],
                 statistic: str, threshold: float, evaluation_periods: int = 1,
                 actions: Sequence[str] | None = None):
    """An alarm on ``statistic(metric) > threshold`` over ``evaluation_periods`` minutes."""
    return aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
        scope, id_,
        alarm_name=alarm_name,
        alarm_description=description,
        namespace=namespace, metric_name=metric_name, dimensions=dict(dimensions),
        statistic=statistic, period=PERIOD_SECONDS, evaluation_periods=evaluation_periods,
        threshold=threshold, comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=list(actions) if actions else None,
        ok_actions=list(actions) if actions else None,
    )


__all__ = ["PERIOD_SECONDS", "metric_alarm"]
