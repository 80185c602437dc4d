"""The bucket the runtimes read their models from: an existing one, or a secure bucket
the stack creates; read grants scoped to a runtime's prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib._cdktf import Construct
from constructs_lib._providers import aws
from constructs_lib.buckets import BucketLifecycle, secure_bucket
from constructs_lib.iam import (
    Condition,
    Grant,
    RoleRef,
    Statement,
    grant,
)
from constructs_lib.tags import Tags, apply_tags, check_tags, normalize_tags

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")


@dataclass(frozen=True, kw_only=True)
class ModelBucketProps:
    """The models' bucket: ``existing_bucket_name`` to use one (the reference's way), else
    the stack creates ``<name>-models-<account>-<region>`` (or ``bucket_name``)."""

    name: str = "sdaas"
    existing_bucket_name: str | None = None
    existing_kms_key_arn: str | None = None
    bucket_name: str | None = None
    force_destroy: bool = False
    noncurrent_version_expiration_days: int = 30
    # Merged into every taggable resource the construct creates (a mapping or pairs).
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        for key in ("existing_bucket_name", "bucket_name"):
            value = getattr(self, key)
            if value is not None and (not BUCKET_RE.match(value) or ".." in value):
                problems.append(f"{key}: {value!r} is not a valid S3 bucket name")
        if self.existing_bucket_name and self.bucket_name:
            problems.append("set existing_bucket_name or bucket_name, not both")
        if self.existing_kms_key_arn and not self.existing_bucket_name:
            problems.append("existing_kms_key_arn needs existing_bucket_name")
        if self.noncurrent_version_expiration_days < 1:
            problems.append(
                "noncurrent_version_expiration_days must be >= 1 "
                f"(got {self.noncurrent_version_expiration_days})"
            )
        if problems:
            raise ValueError("ModelBucketProps: " + "; ".join(problems))


class ModelBucket(Construct):
    """The bucket runtimes read their models from (existing or created).

    A created bucket: SSE-KMS with the account's S3 key and a bucket key, versioning,
    public access blocked, bucket-owner object ownership, a bucket policy refusing plain
    HTTP, a lifecycle that aborts incomplete multipart uploads after a day and expires
    replaced versions. An existing bucket is only looked up (it must exist at plan time).
    """

    def __init__(self, scope: Construct, id_: str, *,
                 props: ModelBucketProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or ModelBucketProps()
        self._props = props
        self._kms_key_arn = props.existing_kms_key_arn
        if props.existing_bucket_name:
            existing = aws.data_aws_s3_bucket.DataAwsS3Bucket(
                self, "Bucket", bucket=props.existing_bucket_name
            )
            self._name = existing.bucket
            self._arn = existing.arn
            self._created = False
            return
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "Caller")
        region = aws.data_aws_region.DataAwsRegion(self, "Region")
        bucket = secure_bucket(
            self, bucket_id="Bucket", id_prefix="",
            bucket_name=(props.bucket_name
                         or f"{props.name}-models-{identity.account_id}-{region.id}"),
            force_destroy=props.force_destroy, kms_key_arn=None,
            lifecycle=BucketLifecycle(
                rule_id="abort-uploads-and-expire-replaced-models",
                noncurrent_days=props.noncurrent_version_expiration_days),
        )
        self._name = bucket.bucket
        self._arn = bucket.arn
        self._created = True
        apply_tags(self, dict(props.tags))

    @staticmethod
    def from_attributes(scope: Construct, id_: str, *, bucket_name: str,
                        kms_key_arn: str | None = None) -> ModelBucket:
        """A model bucket owned elsewhere (looked up, never changed); ``kms_key_arn`` is its
        customer key when it uses SSE-KMS with one (readers are granted ``kms:Decrypt``)."""
        return ModelBucket(scope, id_, props=ModelBucketProps(
            existing_bucket_name=bucket_name, existing_kms_key_arn=kms_key_arn))

    @property
    def bucket_name(self) -> str:
        return self._name

    @property
    def bucket_arn(self) -> str:
        return self._arn

    @property
    def kms_key_arn(self) -> str | None:
        """The customer key of an existing SSE-KMS bucket (None: no KMS grant needed)."""
        return self._kms_key_arn

    @property
    def created(self) -> bool:
        return self._created

    def grant_read(self, role: RoleRef, *, prefix: str,
                   scope: Construct | None = None) -> Grant:
        """List and read the objects under ``<prefix>/`` (what Mountpoint needs); an empty
        prefix grants the whole bucket. ``role`` and ``scope`` as for every grant
        (:func:`constructs_lib.iam.grant`); returns the :class:`Grant`."""
        if prefix and not PREFIX_RE.match(prefix):
            raise ValueError(f"model prefix must not start or end with '/' (got {prefix!r})")
        keys = f"{prefix}/*" if prefix else "*"
        statements = [
            Statement(sid="ListModels", actions=("s3:ListBucket",),
                      resources=(self.bucket_arn,),
                      conditions=(Condition(test="StringLike", variable="s3:prefix",
                                            values=(keys,)),) if prefix else ()),
            Statement(sid="ReadModels", actions=("s3:GetObject",),
                      resources=(f"{self.bucket_arn}/{keys}",)),
        ]
        if self.kms_key_arn:
            statements.append(Statement(sid="DecryptModels", actions=("kms:Decrypt",),
                                        resources=(self.kms_key_arn,)))
        return grant("ReadModels", statements, role=role, scope=scope)

