"""The library's assets: one resolver finds them; the Lambda zip bundles its packages."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import pytest

from constructs_lib import assets
from constructs_lib.packaging import build_zip, zip_bytes

LIBRARY = Path(assets.__file__).resolve().parent
REPOSITORY = LIBRARY.parent


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("chart", ["gpu-nodepool", "keda-sqs-scaler", "namespace", "sd-runtime"])
def test_every_local_chart_resolves_to_the_repository_chart(chart):
    resolved = assets.chart_dir(chart)
    assert (resolved / "Chart.yaml").is_file()
    assert _files(resolved) == _files(REPOSITORY / "charts" / chart)


def test_helm_values_resolve_to_the_repository_folder():
    shipped = {p.name: p.read_bytes() for p in assets.HELM_VALUES_DIR.glob("*.yaml")}
    committed = {p.name: p.read_bytes() for p in (REPOSITORY / "helm-values").glob("*.yaml")}
    assert shipped == committed and "karpenter.yaml" in shipped
    assert assets.helm_values_file("keda").read_bytes() == committed["keda.yaml"]


def test_unknown_assets_are_named_in_the_error():
    with pytest.raises(assets.AssetNotFoundError, match=r"no local chart 'nope'.*sd-runtime"):
        assets.chart_dir("nope")
    with pytest.raises(assets.AssetNotFoundError, match=r"no teardown script 'x\.sh'"):
        assets.teardown_script("x.sh")
    for bad in ("", "../charts", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain file stem"):
            assets.helm_values_file(bad)
    with pytest.raises(assets.AssetNotFoundError, match="'no_such_package' is not installed"):
        assets.package_dir("no_such_package")


def test_lambda_packages_are_the_handlers_and_the_task_contract():
    dirs = assets.lambda_package_dirs()
    assert [d.name for d in dirs] == ["lambda_src", "task_contract"]
    assert all((d / "__init__.py").is_file() for d in dirs)


def test_the_lambda_zip_holds_both_packages_and_nothing_else(tmp_path):
    dirs = assets.lambda_package_dirs()
    data = zip_bytes(dirs)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert "lambda_src/ingest.py" in names and "task_contract/__init__.py" in names
    assert {n.split("/", 1)[0] for n in names} == {"lambda_src", "task_contract"}
    assert all(n.endswith(".py") and "__pycache__" not in n for n in names)
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    # The order the packages are given in does not change a byte.
    assert zip_bytes(tuple(reversed(dirs))) == data
    first, second = build_zip(dirs, tmp_path / "a"), build_zip(dirs, tmp_path / "b")
    assert first.name == second.name and first.name.startswith("lambda_src-")
    assert first.read_bytes() == second.read_bytes() == data


def test_the_zip_builder_refuses_nothing_and_clashing_folders(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        zip_bytes([])
    (tmp_path / "x" / "lambda_src").mkdir(parents=True)
    (tmp_path / "x" / "lambda_src" / "a.py").write_text("A = 1\n")
    with pytest.raises(ValueError, match="share a folder in the zip: lambda_src, lambda_src"):
        zip_bytes([tmp_path / "x" / "lambda_src", assets.package_dir("lambda_src")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Python sources in package 'empty'"):
        zip_bytes([tmp_path / "empty"])


def test_only_the_resolver_locates_files_relative_to_the_package():
    """No module but assets.py builds a path from ``__file__`` (a clone-only lookup)."""
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        if path.name == "assets.py" and path.parent == LIBRARY:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in ("__file__", "REPO_ROOT"):
                offenders.append(f"{path.relative_to(LIBRARY)}:{node.lineno}")
    assert offenders == []
