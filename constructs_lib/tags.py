"""A construct's ``tags``: merged into every taggable resource it creates.

A resource is taggable when its provider type has a ``tags`` argument (its binding class
has ``tags_input``). The resource's own tags win on a shared key (``Name`` stays the
resource's). The provider's ``default_tags`` are the stack owner's business and are not
needed for this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constructs_lib._cdktf import Construct

Tags = tuple[tuple[str, str], ...]


def normalize_tags(tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> Tags:
    """``tags`` as the props keep them: ``(key, value)`` pairs sorted by key (a mapping or
    pairs are accepted)."""
    pairs = tags.items() if isinstance(tags, Mapping) else tags
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


def check_tags(tags: Iterable[tuple[str, str]]) -> list[str]:
    """Problems with a ``tags`` setting (AWS's limits on tag keys and values)."""
    problems = []
    for key, value in tags:
        if not key:
            problems.append("tags: a tag key is empty")
        elif key.lower().startswith("aws:"):
            problems.append(f'tags: "{key}" uses the reserved prefix aws:')
        if len(key) > 128 or len(str(value)) > 256:
            problems.append(f'tags: "{key[:40]}" is longer than AWS allows '
                            "(key 128, value 256 characters)")
    return problems


def is_taggable(node: object) -> bool:
    # CDKTF is imported here, not above: the checks of this module run without it (the
    # configuration file is checked before any construct exists).
    from constructs_lib._cdktf import TerraformResource  # noqa: PLC0415

    return isinstance(node, TerraformResource) and hasattr(type(node), "tags_input")


def apply_tags(scope: Construct, tags: Mapping[str, str]) -> int:
    """Merge ``tags`` into every taggable resource under ``scope``; returns how many."""
    if not tags:
        return 0
    count = 0
    for node in scope.node.find_all():
        if is_taggable(node):
            own = node.tags_input
            node.tags = {**tags, **(dict(own) if own else {})}
            count += 1
    return count


__all__ = ["Tags", "apply_tags", "check_tags", "is_taggable", "normalize_tags"]
