"""The hashicorp/aws provider's schema as the published CDKTF bindings describe it.

A prebuilt bindings package ships its jsii assembly (``_jsii/provider-aws@<v>.jsii.tgz``,
``package/.jsii`` inside). For every resource and data source it holds a class (docs:
``Represents a {@link .../docs/resources/sqs_queue aws_sqs_queue}``), a ``<Class>Config``
interface whose properties are the arguments, and struct interfaces for the blocks. The
Terraform name of an argument is the anchor of its docs link (``...#kms_master_key_id``);
attributes are the class's getters (camelCase: ``certificateAuthority`` is
``certificate_authority``). Types are normalised (``string``, ``number``, ``boolean``,
``list(string)``, ``map(string)``, ``block``, ``list(block)``...), so two versions compare.

The assembly does not carry the provider's deprecation flags (no ``deprecated`` in the
docs of ``aws_region``'s ``name``, which 6.x deprecates); :func:`deprecated_in_schema`
reads them from a real provider's ``terraform providers schema -json`` instead.

Reducing an assembly (100+ MB of JSON) takes ~20 s and a few GB, so it runs in a child
process and the result is cached:

    python -m tests.support.provider_schema <assembly.jsii.tgz> <out.json>
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_REPRESENTS = re.compile(r"docs/(resources|data-sources)/[a-z0-9_]+ (aws_[a-z0-9_]+)\}")
_ANCHOR = re.compile(r"\{@link https://registry\.terraform\.io/providers/hashicorp/aws/"
                     r"[^ #]*#([a-z0-9_]+) ")
_VERSION = re.compile(r"registry\.terraform\.io/providers/hashicorp/aws/(\d+\.\d+\.\d+)/")
# Keys of a synthesized block that are Terraform meta-arguments, not provider arguments.
META = {"//", "depends_on", "lifecycle", "provider", "provisioner", "count", "for_each",
        "connection"}


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "sd-async-eks" / "provider-schemas"
    path.mkdir(parents=True, exist_ok=True)
    return path


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _type(ref: dict, types: dict) -> tuple[str, str | None]:
    """(normalised type, fqn of the block struct or None)."""
    if "primitive" in ref:
        return ref["primitive"], None
    if "union" in ref:
        options = [t for t in ref["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
        if len(options) == 1:
            return _type(options[0], types)
        return "union(" + ",".join(sorted(_type(o, types)[0] for o in options)) + ")", None
    if "collection" in ref:
        kind = "list" if ref["collection"]["kind"] == "array" else "map"
        inner, struct = _type(ref["collection"]["elementtype"], types)
        return f"{kind}({inner})", struct
    fqn = ref.get("fqn", "")
    target = types.get(fqn, {})
    if target.get("datatype"):
        return "block", fqn
    return f"ref({fqn.rsplit('.', 1)[-1]})", None


def _arguments(fqn: str, types: dict, prefix: str = "",
               seen: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    for prop in types.get(fqn, {}).get("properties", []):
        docs = prop.get("docs", {})
        match = _ANCHOR.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
        name = match.group(1) if match else snake(prop["name"])
        kind, struct = _type(prop["type"], types)
        path = f"{prefix}{name}"
        yield path, kind
        if struct and struct not in seen:
            yield from _arguments(struct, types, f"{path}.", seen | {struct})


def reduce_assembly(assembly: dict) -> dict[str, Any]:
    """``{"version", "resource": {type: {"arguments", "attributes"}}, "data": {...}}``."""
    types = assembly["types"]
    out: dict[str, Any] = {"bindings": assembly["version"], "version": None,
                           "resource": {}, "data": {}, "provider": {}}
    for fqn, spec in types.items():
        if spec.get("kind") != "class":
            continue
        summary = spec.get("docs", {}).get("summary", "")
        version = _VERSION.search(summary)
        if version and out["version"] is None:
            out["version"] = version.group(1)
        if spec.get("base") == "cdktf.TerraformProvider":
            out["provider"] = dict(_arguments(f"{fqn}Config", types))
            continue
        match = _REPRESENTS.search(summary)
        if not match or spec.get("base") not in ("cdktf.TerraformResource",
                                                 "cdktf.TerraformDataSource"):
            continue
        block = "resource" if match.group(1) == "resources" else "data"
        getters = sorted({snake(p["name"]) for p in spec.get("properties", [])
                          if not p.get("static") and not p["name"].endswith("Input")})
        out[block][match.group(2)] = {"arguments": dict(_arguments(f"{fqn}Config", types)),
                                      "attributes": getters}
    return out


def assembly_of(package_dir: Path) -> Path:
    (tgz,) = sorted((package_dir / "_jsii").glob("*.jsii.tgz"))
    return tgz


def read_assembly(tgz: Path) -> dict:
    with tarfile.open(tgz) as archive:
        member = archive.extractfile("package/.jsii")
        assert member is not None, f"{tgz} holds no package/.jsii"
        return json.load(member)


def schema_of(tgz: Path) -> dict[str, Any]:
    """The reduced schema of the assembly ``tgz``, cached by its name and size."""
    cached = cache_dir() / f"{tgz.name}-{tgz.stat().st_size}.json"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        subprocess.run([sys.executable, "-m", "tests.support.provider_schema", str(tgz),
                        str(partial)], check=True, timeout=900,
                       cwd=Path(__file__).resolve().parents[2])
        partial.replace(cached)
    return json.loads(cached.read_text())


def download_bindings(requirement: str) -> Path:
    """The unpacked assembly of a published bindings wheel (``pip download``, cached)."""
    target = cache_dir() / requirement.replace("==", "-")
    found = sorted(target.glob("**/*.jsii.tgz"))
    if found:
        return found[0]
    wheels = target / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--disable-pip-version-check", requirement, "-d", str(wheels)],
                   check=True, timeout=900, capture_output=True)
    (wheel,) = sorted(wheels.glob("*.whl"))
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        archive.extract(name, target)
    wheel.unlink()
    return target / name


def deprecated_in_schema(schema_json: dict) -> set[tuple[str, str, str]]:
    """``(block, type, path)`` of every deprecated argument or block in a provider schema
    (``terraform providers schema -json``), and ``(block, type, "")`` for deprecated types."""
    out: set[tuple[str, str, str]] = set()

    def walk(block: str, rtype: str, body: dict, prefix: str) -> None:
        for name, attribute in body.get("attributes", {}).items():
            if attribute.get("deprecated"):
                out.add((block, rtype, f"{prefix}{name}"))
        for name, nested in body.get("block_types", {}).items():
            if nested.get("block", {}).get("deprecated"):
                out.add((block, rtype, f"{prefix}{name}"))
            walk(block, rtype, nested.get("block", {}), f"{prefix}{name}.")

    (provider,) = schema_json["provider_schemas"].values()
    for key, block in (("resource_schemas", "resource"), ("data_source_schemas", "data")):
        for rtype, schema in provider.get(key, {}).items():
            if schema.get("block", {}).get("deprecated"):
                out.add((block, rtype, ""))
            walk(block, rtype, schema.get("block", {}), "")
    return out


def used(doc: dict, schema: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """``(block, type, argument path, value)`` for every AWS argument a synthesized
    configuration sets; values are recursed into where ``schema`` says the argument is a
    block (a map's keys are the user's data, not arguments)."""

    def arguments(block: str, rtype: str) -> dict[str, str]:
        if block == "provider":
            return schema["provider"]
        return schema[block].get(rtype, {}).get("arguments", {})

    def walk(block: str, rtype: str, body: dict, prefix: str) -> Iterator:
        known = arguments(block, rtype)
        for key, value in body.items():
            if not prefix and key in META:
                continue
            path = f"{prefix}{key}"
            yield block, rtype, path, value
            if not known.get(path, "").endswith(("block", "block)")):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    yield from walk(block, rtype, item, f"{path}.")

    for block in ("resource", "data"):
        for rtype, resources in doc.get(block, {}).items():
            if not rtype.startswith("aws_"):
                continue
            for body in resources.values():
                yield from walk(block, rtype, body, "")
    for body in doc.get("provider", {}).get("aws", []):
        yield from walk("provider", "aws", body, "")


_REFERENCE = re.compile(r"\b(data\.)?(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)")


def referenced(text: str) -> set[tuple[str, str, str]]:
    """``(block, type, attribute)`` of every AWS resource or data source attribute a
    synthesized configuration reads (inside ``${...}`` expressions)."""
    out = set()
    for expression in re.findall(r"\$\{(.*?)\}", text):
        for data, rtype, _, attribute in _REFERENCE.findall(expression):
            out.add(("data" if data else "resource", rtype, attribute))
    return out


def main(argv: list[str]) -> int:
    tgz, target = Path(argv[0]), Path(argv[1])
    target.write_text(json.dumps(reduce_assembly(read_assembly(tgz)), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
