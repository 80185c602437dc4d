"""The only module that imports Terraform provider bindings (STYLE 10).

``cdktf_cdktf_provider_aws`` imports ~2,100 submodules when its package ``__init__`` runs
(8-12 s and ~1 GB per process). :class:`ProviderBindings` skips that ``__init__``: it
registers the package object without executing it, loads the package's jsii assembly (which
every submodule needs), and imports a submodule only when an attribute names it::

    from constructs_lib._providers import aws
    aws.sqs_queue.SqsQueue(self, "Queue", ...)

``SD_EAGER_PROVIDER_IMPORT=1`` switches back to the plain, eager import; a test proves the
synthesized JSON is byte-identical either way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

from constructs_lib import _cdktf  # noqa: F401 - jsii environment first

EAGER_ENV = "SD_EAGER_PROVIDER_IMPORT"


class ProviderBindings:
    """Attribute access to a prebuilt provider's submodules, imported on first use."""

    def __init__(self, package: str) -> None:
        self._package = package
        self._lock = threading.Lock()
        self._root: ModuleType | None = None

    @property
    def package(self) -> str:
        return self._package

    def _load_root(self) -> ModuleType:
        with self._lock:
            if self._root is not None:
                return self._root
            if os.environ.get(EAGER_ENV) == "1" or self._package in sys.modules:
                root = importlib.import_module(self._package)
            else:
                spec = importlib.util.find_spec(self._package)
                if spec is None or spec.loader is None:
                    raise ModuleNotFoundError(
                        f"provider bindings {self._package!r} are not installed; "
                        "run `make install`"
                    )
                root = importlib.util.module_from_spec(spec)
                # Registered but not executed: its __init__ would import every submodule.
                sys.modules[self._package] = root
                importlib.import_module(f"{self._package}._jsii")
            self._root = root
            return root

    def __getattr__(self, submodule: str) -> ModuleType:
        if submodule.startswith("_"):
            raise AttributeError(submodule)
        self._load_root()
        try:
            return importlib.import_module(f"{self._package}.{submodule}")
        except ModuleNotFoundError as exc:
            raise AttributeError(
                f"{self._package} has no submodule {submodule!r}"
            ) from exc


aws = ProviderBindings("cdktf_cdktf_provider_aws")
helm = ProviderBindings("cdktf_cdktf_provider_helm")
kubernetes = ProviderBindings("cdktf_cdktf_provider_kubernetes")

__all__ = ["EAGER_ENV", "ProviderBindings", "aws", "helm", "kubernetes"]
