"""The secure S3 bucket every bucket of the library is: one definition.

Public access blocked, bucket-owner-enforced ownership, SSE-KMS with a bucket key (a
customer key, or the account's AWS managed S3 key), versioning, a lifecycle that aborts
incomplete multipart uploads after a day and expires replaced versions (and, optionally,
current objects), and a bucket policy refusing plain HTTP.

The resources are created directly in ``scope`` (not under a child construct), named
``<prefix>PublicAccess``, ``<prefix>Ownership``, ... so the buckets' Terraform addresses
stay those of the constructs that own them.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs_lib._cdktf import Construct
from constructs_lib._providers import aws
from constructs_lib.iam import deny_insecure_transport, policy_document


@dataclass(frozen=True, kw_only=True)
class BucketLifecycle:
    """Lifecycle of a secure bucket: ``rule_id`` names the rule; ``expire_after_days``
    expires current objects (None: never); replaced versions go after
    ``noncurrent_days``."""

    rule_id: str
    noncurrent_days: int
    expire_after_days: int | None = None


def secure_bucket(scope: Construct, *, bucket_id: str, id_prefix: str, bucket_name: str,
                  force_destroy: bool, kms_key_arn: str | None,
                  lifecycle: BucketLifecycle):
    """Create the bucket ``bucket_id`` and its settings in ``scope``; return the bucket.

    ``kms_key_arn`` None encrypts with the account's AWS managed S3 key (usable through S3
    by every principal of the account that may read the objects: readers need no KMS grant).
    """
    bucket = aws.s3_bucket.S3Bucket(scope, bucket_id, bucket=bucket_name,
                                    force_destroy=force_destroy)
    aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
        scope, f"{id_prefix}PublicAccess", bucket=bucket.id,
        block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True,
    )
    aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
        scope, f"{id_prefix}Ownership", bucket=bucket.id,
        rule=aws.s3_bucket_ownership_controls.S3BucketOwnershipControlsRule(
            object_ownership="BucketOwnerEnforced"),
    )
    sse = aws.s3_bucket_server_side_encryption_configuration
    by_default = (
        sse.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA)
    sse.S3BucketServerSideEncryptionConfigurationA(
        scope, f"{id_prefix}Encryption", bucket=bucket.id,
        rule=[sse.S3BucketServerSideEncryptionConfigurationRuleA(
            apply_server_side_encryption_by_default=(
                by_default(sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
                if kms_key_arn is not None else by_default(sse_algorithm="aws:kms")),
            bucket_key_enabled=True,
        )],
    )
    versioning = aws.s3_bucket_versioning
    versioning.S3BucketVersioningA(
        scope, f"{id_prefix}Versioning", bucket=bucket.id,
        versioning_configuration=versioning.S3BucketVersioningVersioningConfiguration(
            status="Enabled"),
    )
    lc = aws.s3_bucket_lifecycle_configuration
    expiration = (
        [lc.S3BucketLifecycleConfigurationRuleExpiration(days=lifecycle.expire_after_days)]
        if lifecycle.expire_after_days is not None else None)
    lc.S3BucketLifecycleConfiguration(
        scope, f"{id_prefix}Lifecycle", bucket=bucket.id,
        rule=[lc.S3BucketLifecycleConfigurationRule(
            id=lifecycle.rule_id,
            status="Enabled",
            filter=[lc.S3BucketLifecycleConfigurationRuleFilter(prefix="")],
            expiration=expiration,
            noncurrent_version_expiration=[
                lc.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=lifecycle.noncurrent_days)],
            abort_incomplete_multipart_upload=[
                lc.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=1)],
        )],
    )
    policy = policy_document(scope, f"{id_prefix}PolicyDocument", [
        deny_insecure_transport((bucket.arn, f"{bucket.arn}/*"), "s3")])
    aws.s3_bucket_policy.S3BucketPolicy(scope, f"{id_prefix}Policy", bucket=bucket.id,
                                        policy=policy)
    return bucket


__all__ = ["BucketLifecycle", "secure_bucket"]
