"""Container image references (repository with a tag or a digest) as the charts take them."""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# [registry[:port]/]path of an image reference (the distribution reference grammar).
REPOSITORY_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


@dataclass(frozen=True, kw_only=True)
class ContainerImage:
    """A container image by tag or digest (``repository`` may be a Terraform reference)."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if (self.tag is None) == (self.digest is None):
            raise ValueError(
                f"image {self.repository}: give exactly one of tag and digest "
                f"(got tag={self.tag!r}, digest={self.digest!r})"
            )
        if self.tag is not None and not TAG_RE.match(self.tag):
            raise ValueError(f"image {self.repository}: {self.tag!r} is not a valid tag")
        if self.digest is not None and not DIGEST_RE.match(self.digest):
            raise ValueError(
                f"image {self.repository}: digest must be sha256:<64 hex> (got {self.digest!r})"
            )

    @classmethod
    def parse(cls, reference: str) -> ContainerImage:
        """``repository:tag`` or ``repository@sha256:...``."""
        if "@" in reference:
            repository, digest = reference.rsplit("@", 1)
            image = cls(repository=repository, digest=digest)
        else:
            repository, sep, tag = reference.rpartition(":")
            if not sep or "/" in tag:
                raise ValueError(
                    f"image {reference!r} needs a tag or digest (repository:tag or "
                    "repository@sha256:...)"
                )
            image = cls(repository=repository, tag=tag)
        if not REPOSITORY_RE.match(repository):
            raise ValueError(f"image {reference!r}: {repository!r} is not a repository like "
                             "public.ecr.aws/org/name or registry:5000/name")
        return image

    def chart_values(self) -> dict[str, str]:
        out = {"repository": self.repository}
        if self.digest:
            out["digest"] = self.digest
        else:
            out["tag"] = self.tag or ""
        return out

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

