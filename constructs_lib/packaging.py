"""Deterministic Lambda packages: the same sources always give the same zip bytes."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE_DIR = REPO_ROOT / "lambda_src"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def _sources(source_dir: Path) -> list[Path]:
    files = [
        p for p in source_dir.rglob("*.py")
        if "__pycache__" not in p.parts and not p.name.startswith("test_")
    ]
    if not files:
        raise FileNotFoundError(f"no Python sources under {source_dir}")
    return sorted(files, key=lambda p: p.relative_to(source_dir).as_posix())


def zip_bytes(source_dir: Path = LAMBDA_SOURCE_DIR) -> bytes:
    """The package as bytes: ``<dir name>/<files>``, sorted, fixed timestamps and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _sources(source_dir):
            name = f"{source_dir.name}/{path.relative_to(source_dir).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the build machine is
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_zip(source_dir: Path = LAMBDA_SOURCE_DIR, out_dir: Path | None = None) -> Path:
    """Write the package to ``out_dir`` (a temporary directory by default); return its path.

    The file name carries the content hash, so two builds of the same sources give the same
    path relative to ``out_dir`` and the same bytes.
    """
    data = zip_bytes(source_dir)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target_dir = out_dir or Path(tempfile.mkdtemp(prefix="sd-lambda-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{source_dir.name}-{digest}.zip"
    target.write_bytes(data)
    return target
