"""The ECR repository of the queue agent image (immutable tags, scanned, KMS)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from constructs_lib._cdktf import Construct
from constructs_lib._providers import aws
from constructs_lib.runtime.image import ContainerImage
from constructs_lib.tags import Tags, apply_tags, check_tags, normalize_tags


@dataclass(frozen=True, kw_only=True)
class AgentImageRepositoryProps:
    """The queue agent's ECR repository, ``<name>-queue-agent`` (or ``repository_name``)."""

    name: str = "sdaas"
    repository_name: str | None = None
    untagged_expire_days: int = 7
    force_delete: bool = False
    # Merged into every taggable resource the construct creates (a mapping or pairs).
    tags: Tags = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        problems = check_tags(self.tags)
        if problems:
            raise ValueError("AgentImageRepositoryProps: " + "; ".join(problems))
        name = self.repository_name or f"{self.name}-queue-agent"
        if not re.match(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
                        name) or len(name) > 256:
            raise ValueError(f"AgentImageRepositoryProps: {name!r} is not a valid ECR name")
        if self.untagged_expire_days < 1:
            raise ValueError(
                "AgentImageRepositoryProps: untagged_expire_days must be >= 1 "
                f"(got {self.untagged_expire_days})"
            )


class AgentImageRepository(Construct):
    """ECR repository for the queue agent image: scan on push, immutable tags, KMS
    encryption (the account's ECR key), untagged images expire. ``make agent-image``
    builds ``agent/Dockerfile`` and pushes it here."""

    def __init__(self, scope: Construct, id_: str, *,
                 props: AgentImageRepositoryProps | None = None) -> None:
        super().__init__(scope, id_)
        props = props or AgentImageRepositoryProps()
        ecr = aws.ecr_repository
        self._repository = ecr.EcrRepository(
            self, "Repository",
            name=props.repository_name or f"{props.name}-queue-agent",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=ecr.EcrRepositoryImageScanningConfiguration(
                scan_on_push=True),
            encryption_configuration=[ecr.EcrRepositoryEncryptionConfiguration(
                encryption_type="KMS")],
            force_delete=props.force_delete,
        )
        aws.ecr_lifecycle_policy.EcrLifecyclePolicy(
            self, "Lifecycle",
            repository=self._repository.name,
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": "Expire untagged images (tagged ones are pinned by deployments)",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                              "countUnit": "days", "countNumber": props.untagged_expire_days},
                "action": {"type": "expire"},
            }]}, sort_keys=True, separators=(",", ":")),
        )
        apply_tags(self, dict(props.tags))

    @property
    def repository_url(self) -> str:
        return self._repository.repository_url

    @property
    def repository_arn(self) -> str:
        return self._repository.arn

    @property
    def repository_name(self) -> str:
        return self._repository.name

    def image(self, tag: str) -> ContainerImage:
        if tag == "latest":
            raise ValueError("the repository's tags are immutable: name a version, not latest")
        return ContainerImage(repository=self.repository_url, tag=tag)

