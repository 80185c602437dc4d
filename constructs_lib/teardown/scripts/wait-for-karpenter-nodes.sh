#!/usr/bin/env bash
# Destroy-time step (KarpenterGpuPool): runs after the GPU NodePools are deleted and before
# Karpenter itself is removed. Waits until every instance Karpenter launched for the cluster
# is gone, so no GPU node outlives its controller. After the timeout it terminates what is
# left (they are this cluster's Karpenter nodes by tag), so nothing is orphaned either way.
#
#   wait-for-karpenter-nodes.sh CLUSTER REGION [TIMEOUT_SECONDS] [INTERVAL_SECONDS]
set -euo pipefail
cluster=${1:?cluster name}
region=${2:?region}
timeout=${3:-900}
interval=${4:-10}

nodes() {
  aws ec2 describe-instances --region "$region" \
    --filters "Name=tag:kubernetes.io/cluster/$cluster,Values=owned" \
              "Name=tag-key,Values=karpenter.sh/nodepool" \
              "Name=instance-state-name,Values=pending,running,stopping,stopped" \
    --query 'Reservations[].Instances[].InstanceId' --output text
}

deadline=$((SECONDS + timeout))
while true; do
  ids=$(nodes)
  if [ -z "$ids" ] || [ "$ids" = "None" ]; then
    echo "karpenter: no nodes left in cluster $cluster"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "karpenter: nodes still running after ${timeout}s, terminating them: $ids" >&2
    # shellcheck disable=SC2086 - one argument per instance id
    aws ec2 terminate-instances --region "$region" --instance-ids $ids >/dev/null
    exit 0
  fi
  echo "karpenter: waiting for nodes to terminate: $ids"
  sleep "$interval"
done
