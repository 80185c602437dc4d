"""The preview ComfyUI's files (input, temp and output) in memory, bounded (the oldest go
first), with ``/view`` and ``/upload/image`` over them, named, numbered and served as
ComfyUI 0.3.64 does (annotated names such as ``x.png [output]``, folder escapes refused,
an upload renamed ``name (1).png`` when another file has its name)."""

from __future__ import annotations

import email
import email.policy
import posixpath
import re
import threading
from collections import OrderedDict

from sdaas.local.preview.comfyui_answers import SERVER_FAILURE, Answer
from sdaas.local.preview.comfyui_media import IMAGE_SUFFIXES, content_type

FILE_TYPES = ("input", "temp", "output")
MAX_STORED_FILES = 1024
_NUMBERED = re.compile(r"^(.*)_(\d{5,})_(\.[^.]*)?$")


class FileStore:
    def __init__(self) -> None:
        self.files: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._counters: dict[tuple[str, str, str], int] = {}
        self._lock = threading.RLock()

    def write(self, kind: str, subfolder: str, name: str, data: bytes) -> None:
        with self._lock:
            key = (kind, subfolder, name)
            self.files[key] = data
            self.files.move_to_end(key)
            while len(self.files) > MAX_STORED_FILES:
                self.files.popitem(last=False)
            numbered = _NUMBERED.match(name)
            if numbered:
                counter_key = (kind, subfolder, numbered.group(1))
                self._counters[counter_key] = max(self._counters.get(counter_key, 0),
                                                  int(numbered.group(2)))

    def next_counter(self, kind: str, subfolder: str, stem: str) -> int:
        """One more than the highest ``<stem>_<counter>_`` file written there (ComfyUI
        counts the files in the folder; these counters outlive evicted files)."""
        with self._lock:
            return self._counters.get((kind, subfolder, stem), 0) + 1

    @staticmethod
    def split(kind: str, path: str, annotated: bool = True) -> tuple[str, str, str] | None:
        """(type, subfolder, name) of a path under a type's directory; None if it escapes.
        ``annotated``: a ``name [output]`` suffix names the directory, as in ComfyUI."""
        if annotated and path.endswith((" [input]", " [temp]", " [output]")):
            path, _, annotation = path.rpartition(" [")
            kind = annotation[:-1]
        full = posixpath.normpath(posixpath.join("/root", path))
        if posixpath.commonpath(("/root", full)) != "/root" or full == "/root":
            return None
        subfolder, name = posixpath.split(posixpath.relpath(full, "/root"))
        return kind, subfolder, name

    def read_input(self, name: str) -> bytes | None:
        key = self.split("input", name)
        with self._lock:
            return self.files.get(key) if key is not None else None

    def input_exists(self, name: str) -> bool:
        return self.read_input(name) is not None

    def input_images(self) -> list[str]:
        with self._lock:
            return sorted(name for kind, subfolder, name in self.files
                          if kind == "input" and not subfolder
                          and name.lower().endswith(IMAGE_SUFFIXES))

    def view(self, params: dict[str, str]) -> Answer:
        if "filename" not in params:
            return Answer(404)
        filename, kind = params["filename"], None
        for annotation in ("input", "temp", "output"):
            if filename.endswith(f" [{annotation}]"):
                filename, kind = filename[: -len(annotation) - 3], annotation
        if not filename:
            return Answer(400)
        if filename[0] == "/" or ".." in filename:
            return Answer(400)
        kind = kind or params.get("type", "output")
        if kind not in FILE_TYPES:
            return Answer(400)
        subfolder = ""
        if "subfolder" in params:
            full = posixpath.normpath(posixpath.join("/root", params["subfolder"]))
            if posixpath.commonpath(("/root", full)) != "/root":
                return Answer(403)
            relative = posixpath.relpath(full, "/root")
            subfolder = "" if relative == "." else relative
        name = posixpath.basename(filename)
        with self._lock:
            data = self.files.get((kind, subfolder, name))
        if data is None:
            return Answer(404)
        return Answer(200, data, content_type(name),
                      {"Content-Disposition": f'filename="{name}"'})

    def upload(self, raw: bytes, request_type: str) -> Answer:
        message = email.message_from_bytes(
            b"Content-Type: " + request_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw,
            policy=email.policy.HTTP)
        fields: dict[str, tuple[str | None, bytes]] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
        kind = (fields["type"][1].decode() if "type" in fields else None) or "input"
        if kind not in FILE_TYPES:
            return SERVER_FAILURE  # ComfyUI fails on an unknown type
        if "image" not in fields or fields["image"][0] is None:
            return Answer(400)
        filename = fields["image"][0]
        data = fields["image"][1]
        if not filename:
            return Answer(400)
        subfolder = fields["subfolder"][1].decode() if "subfolder" in fields else ""
        key = self.split(kind, posixpath.join(posixpath.normpath(subfolder or "."), filename),
                          annotated=False)
        if key is None:
            return Answer(400)
        overwrite = fields["overwrite"][1].decode() if "overwrite" in fields else None
        stem, dot, suffix = filename.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot and stem else (filename, "")
        with self._lock:
            duplicate = False
            if overwrite not in ("true", "1"):
                index = 1
                while key in self.files:
                    if self.files[key] == data:
                        duplicate = True
                        break
                    filename = f"{stem} ({index}){suffix}"
                    key = (key[0], key[1], filename)
                    index += 1
            if not duplicate:
                self.write(*key, data)
        return Answer.json({"name": filename, "subfolder": subfolder, "type": kind})
