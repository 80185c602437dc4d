"""Deterministic Lambda packages: the same sources always give the same zip bytes."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE_DIR = REPO_ROOT / "lambda_src"
CONTRACT_SOURCE_DIR = REPO_ROOT / "task_contract"
# The Lambda package: the handlers and the task contract they import.
LAMBDA_PACKAGE_DIRS = (LAMBDA_SOURCE_DIR, CONTRACT_SOURCE_DIR)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def _sources(source_dir: Path) -> list[Path]:
    files = [
        p for p in source_dir.rglob("*.py")
        if "__pycache__" not in p.parts and not p.name.startswith("test_")
    ]
    if not files:
        raise FileNotFoundError(f"no Python sources under {source_dir}")
    return sorted(files, key=lambda p: p.relative_to(source_dir).as_posix())


def zip_bytes(source_dirs: Sequence[Path] = LAMBDA_PACKAGE_DIRS) -> bytes:
    """The package as bytes: ``<dir name>/<files>`` per directory, sorted, fixed timestamps
    and modes."""
    entries = sorted(
        (f"{source_dir.name}/{path.relative_to(source_dir).as_posix()}", path)
        for source_dir in source_dirs for path in _sources(source_dir)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the build machine is
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_zip(source_dirs: Sequence[Path] = LAMBDA_PACKAGE_DIRS,
              out_dir: Path | None = None) -> Path:
    """Write the package to ``out_dir`` (a temporary directory by default); return its path.

    The file name carries the content hash, so two builds of the same sources give the same
    path relative to ``out_dir`` and the same bytes.
    """
    data = zip_bytes(source_dirs)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target_dir = out_dir or Path(tempfile.mkdtemp(prefix="sd-lambda-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{source_dirs[0].name}-{digest}.zip"
    target.write_bytes(data)
    return target
