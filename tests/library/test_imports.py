"""What importing the library costs and pulls in, checked from the source and from a fresh
interpreter: the library never imports the application, pydantic or the tools; the seams
are the only modules importing CDKTF and the provider bindings; the top-level names load
lazily; a consumer's own provider imports work beside the library's lazy loader."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import constructs_lib

LIBRARY = Path(constructs_lib.__file__).resolve().parent
# Third-party packages the library may import, and where.
SEAMS = {
    "cdktf": {"_cdktf.py"},
    "constructs": {"_cdktf.py"},
}
ALLOWED_EVERYWHERE = {"constructs_lib", "task_contract", "yaml"}
FORBIDDEN = {"sdaas", "pydantic", "agent", "lambda_src", "boto3", "botocore", "requests"}
CONSTRUCTS = ("ServerlessIngress", "GpuEksCluster", "KarpenterGpuPool", "KedaSqsScaler",
              "SdRuntime")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import statement, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _library_modules() -> list[Path]:
    return sorted(p for p in LIBRARY.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_library_imports_only_the_standard_library_its_seams_and_yaml():
    problems = []
    for path in _library_modules():
        rel = path.relative_to(LIBRARY).as_posix()
        for line, module in _imports(path):
            if module in FORBIDDEN:
                problems.append(f"{rel}:{line} imports {module} (the application or a tool)")
            elif module in SEAMS:
                if rel not in SEAMS[module]:
                    problems.append(f"{rel}:{line} imports {module}: only "
                                    f"{', '.join(sorted(SEAMS[module]))} may")
            elif module.startswith("cdktf_cdktf_provider"):
                problems.append(f"{rel}:{line} imports {module}: go through _providers.py")
            elif module not in ALLOWED_EVERYWHERE and module not in sys.stdlib_module_names:
                problems.append(f"{rel}:{line} imports {module}")
    assert problems == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from sdaas.config import load_config\n    import pydantic\n")
    assert _imports(probe) == [(2, "sdaas"), (3, "pydantic")]


def test_no_construct_reads_another_constructs_props():
    """Props in, attributes out: ``x.props`` only on ``self``."""
    offenders = []
    for path in _library_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "props"
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                offenders.append(f"{path.relative_to(LIBRARY)}:{node.lineno}")
    assert offenders == []


def test_every_exported_name_resolves_to_its_defining_module():
    assert sorted(constructs_lib.__all__) == sorted(constructs_lib._EXPORTS)
    assert set(CONSTRUCTS) <= set(constructs_lib.__all__)
    for name in constructs_lib.__all__:
        value = getattr(constructs_lib, name)
        assert getattr(value, "__name__", name) == name
        module = constructs_lib._EXPORTS[name]
        assert getattr(sys.modules[module], name) is value
    assert set(constructs_lib.__all__) <= set(dir(constructs_lib))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        constructs_lib.Nope  # noqa: B018


def _fresh(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False, cwd=LIBRARY.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_one_line_import_pulls_in_no_application_and_no_provider_submodule():
    result = _fresh(
        "import json, sys\n"
        f"from constructs_lib import {', '.join(CONSTRUCTS)}, ServerlessIngressProps\n"
        "mods = sorted(sys.modules)\n"
        "print(json.dumps({'mods': mods}))\n")
    mods = result["mods"]
    for forbidden in ("sdaas", "pydantic", "agent", "lambda_src", "boto3"):
        assert not any(m == forbidden or m.startswith(forbidden + ".") for m in mods), forbidden
    assert "constructs_lib.runtime.construct" in mods
    aws = [m for m in mods if m.startswith("cdktf_cdktf_provider_aws.")]
    assert aws == [], f"provider submodules imported before any resource: {aws[:5]}"


@pytest.mark.slow
def test_a_consumer_imports_provider_modules_the_library_never_uses():
    """After the library registered the bindings' package without running its __init__,
    the consumer's own imports of it behave as without the library."""
    result = _fresh(
        "import json, sys\n"
        "from constructs_lib import ServerlessIngress  # registers the bindings' package\n"
        "import cdktf_cdktf_provider_aws as root\n"
        "from cdktf_cdktf_provider_aws import lightsail_instance\n"
        "import cdktf_cdktf_provider_aws.wafv2_web_acl\n"
        "out = {\n"
        " 'from': lightsail_instance.LightsailInstance.__name__,\n"
        " 'dotted': cdktf_cdktf_provider_aws.wafv2_web_acl.Wafv2WebAcl.__name__,\n"
        " 'attribute': root.cloud9_environment_ec2.Cloud9EnvironmentEc2.__name__,\n"
        " 'same': root.lightsail_instance is lightsail_instance,\n"
        " 'dir': 'glacier_vault' in dir(root),\n"
        " 'all': root.__all__,\n"
        "}\n"
        "loaded = [m for m in sys.modules if m.startswith('cdktf_cdktf_provider_aws.')]\n"
        "out['lazy'] = len(loaded) < 50  # the package's own __init__ loads ~2,100\n"
        "try:\n"
        "    root.no_such_module\n"
        "except AttributeError as exc:\n"
        "    out['missing'] = str(exc)\n"
        "print(json.dumps(out))\n")
    assert result == {
        "from": "LightsailInstance", "dotted": "Wafv2WebAcl",
        "attribute": "Cloud9EnvironmentEc2", "same": True, "dir": True, "all": [],
        "lazy": True,
        "missing": "cdktf_cdktf_provider_aws has no submodule 'no_such_module'",
    }
