"""Helm values for every release (STYLE 13).

A release's values start from ``helm-values/<release>.yaml``; a construct deep-merges its
typed, generated overrides into them and passes the result to ``helm_release.values`` as
one YAML document with sorted keys, so a diff of the synthesized configuration shows only
what changed::

    values = deep_merge(load_values("karpenter"), {"settings": {"clusterName": name}})
    Release(self, "Karpenter", ..., values=[dump_values(values)])

Terraform references (tokens) may sit inside string values: CDKTF resolves a token
embedded in a string into a Terraform interpolation (``${aws_eks_cluster.x.endpoint}``).
``dump_values`` writes every string that holds a reference single-quoted, so whatever it
resolves to at apply time (an account id made of digits, ``true``, a URL) stays a YAML
string. A secret never goes here: pass it as a ``set_sensitive`` block of the release.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import yaml

from constructs_lib.assets import helm_values_file

values_path = helm_values_file


def load_values(release: str) -> dict[str, Any]:
    """The project's default values of ``release``; ``{}`` for an empty file.

    A missing file is an error: every release has a committed defaults file.
    """
    path = values_path(release)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no default values for release {release!r}: expected helm-values/{release}.yaml"
        ) from None
    data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"helm-values/{release}.yaml must be a mapping of keys to values "
            f"(got {type(data).__name__})"
        )
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base``.

    Mappings merge key by key, recursively; anything else in ``override`` (scalars, lists,
    ``None``) replaces the value in ``base``. Neither argument is modified.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# A CDKTF string token (``${TfToken[TOKEN.12]}``) before resolution, or the Terraform
# interpolation it resolves to (``${aws_eks_cluster.x.endpoint}``).
_REFERENCE = re.compile(r"\$\{")


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases (a repeated dict is written out twice, not as ``*id001``)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if _REFERENCE.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    if "\n" in data:  # TOML, scripts: readable as a literal block
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def _plain(value: Any) -> Any:
    """Mappings to dicts and tuples to lists, so SafeDumper accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dump_values(values: Mapping[str, Any]) -> str:
    """One YAML document, keys sorted at every level, block style, UTF-8 kept as is."""
    return yaml.dump(
        _plain(values),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,  # never fold long strings (tokens, TOML) over lines
    )


__all__ = ["deep_merge", "dump_values", "load_values", "values_path"]
