#!/usr/bin/env bash
# Destroy-time step (KarpenterGpuPool): runs after Karpenter is removed. Deletes what
# Karpenter creates outside Terraform and leaves behind when it is uninstalled: instance
# profiles tagged for this cluster and launch templates tagged with the cluster's name.
#
#   delete-karpenter-leftovers.sh CLUSTER REGION
set -euo pipefail
cluster=${1:?cluster name}
region=${2:?region}

profiles=$(aws iam list-instance-profiles --query 'InstanceProfiles[].InstanceProfileName' \
  --output text)
for profile in $profiles; do
  [ "$profile" = "None" ] && continue
  # GetInstanceProfile returns the profile's tags (and its roles) in one call.
  matches=$(aws iam get-instance-profile --instance-profile-name "$profile" --query \
    "length(InstanceProfile.Tags[?(Key=='kubernetes.io/cluster/$cluster' && Value=='owned') || Key=='karpenter.k8s.aws/ec2nodeclass'])" \
    --output text)
  if [ "$matches" = "2" ]; then
    roles=$(aws iam get-instance-profile --instance-profile-name "$profile" \
      --query 'InstanceProfile.Roles[].RoleName' --output text)
    for role in $roles; do
      [ "$role" = "None" ] && continue
      aws iam remove-role-from-instance-profile --instance-profile-name "$profile" \
        --role-name "$role"
    done
    aws iam delete-instance-profile --instance-profile-name "$profile"
    echo "karpenter: deleted instance profile $profile"
  fi
done

templates=$(aws ec2 describe-launch-templates --region "$region" \
  --filters "Name=tag:karpenter.k8s.aws/cluster,Values=$cluster" \
  --query 'LaunchTemplates[].LaunchTemplateId' --output text)
for template in $templates; do
  [ "$template" = "None" ] && continue
  aws ec2 delete-launch-template --region "$region" --launch-template-id "$template" >/dev/null
  echo "karpenter: deleted launch template $template"
done
