"""Deterministic Lambda packages: the same sources always give the same zip bytes."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def _sources(package_dir: Path) -> list[Path]:
    files = [
        p for p in package_dir.rglob("*.py")
        if "__pycache__" not in p.parts and not p.name.startswith("test_")
    ]
    if not files:
        raise FileNotFoundError(f"no Python sources in package {package_dir.name!r}")
    return sorted(files, key=lambda p: p.relative_to(package_dir).as_posix())


def _package_dirs(packages: Sequence[Path]) -> list[Path]:
    dirs = [Path(p) for p in packages]
    if not dirs:
        raise ValueError("a Lambda package needs at least one Python package")
    names = [d.name for d in dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"two packages would share a folder in the zip: {', '.join(names)}")
    return sorted(dirs, key=lambda d: d.name)


def zip_bytes(packages: Sequence[Path]) -> bytes:
    """The zip of ``packages`` (package directories) as bytes: ``<package>/<files>``
    for each, sorted, with fixed timestamps and modes (the order of ``packages`` does not
    matter)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package_dir in _package_dirs(packages):
            for path in _sources(package_dir):
                name = f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}"
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, whatever the build machine is
                archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_zip(packages: Sequence[Path], out_dir: Path | None = None) -> Path:
    """Write the zip of ``packages`` to ``out_dir`` (a temporary directory by default);
    return its path.

    The file is named after the first package and the content hash, so two builds of the
    same sources give the same path relative to ``out_dir`` and the same bytes.
    """
    data = zip_bytes(packages)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target_dir = out_dir or Path(tempfile.mkdtemp(prefix="sd-lambda-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{Path(packages[0]).name}-{digest}.zip"
    target.write_bytes(data)
    return target


__all__ = ["build_zip", "zip_bytes"]
