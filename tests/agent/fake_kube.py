"""A fake Kubernetes API answering reads of pods and merge-patches of their metadata
(loopback, plain HTTP)."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.base import FakeServer, Request, Response

_POD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)$")


class FakeKubeApi(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.annotations: dict[tuple[str, str], dict[str, str]] = {}
        self.patches: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}  # GET answers, by (ns, name)

    def fault_paths(self) -> tuple[str, ...]:
        return ("/api",)

    def annotation(self, namespace: str, pod: str) -> str | None:
        return self.annotations.get((namespace, pod), {}).get("karpenter.sh/do-not-disrupt")

    def handle(self, request: Request) -> Response:
        match = _POD.match(request.path)
        if request.method == "GET" and match is not None and match.groups() in self.pods:
            self.tokens.add(request.headers.get("Authorization", ""))
            return Response(200, {"kind": "Pod", **self.pods[match.groups()]})
        if request.method != "PATCH" or match is None:
            return Response(404, {"kind": "Status", "code": 404})
        if request.headers.get("Content-Type") != "application/merge-patch+json":
            return Response(415, {"kind": "Status", "code": 415})
        self.tokens.add(request.headers.get("Authorization", ""))
        patch = request.json()
        self.patches.append(patch)
        current = self.annotations.setdefault(match.groups(), {})
        for key, value in patch.get("metadata", {}).get("annotations", {}).items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        return Response(200, {"kind": "Pod", "metadata": {"annotations": current}})
