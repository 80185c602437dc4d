"""The only module that imports Terraform provider bindings (STYLE 10).

``cdktf_cdktf_provider_aws`` imports ~2,100 submodules when its package ``__init__`` runs
(8-12 s and ~1 GB per process). :class:`ProviderBindings` skips that ``__init__``: it
registers the package object without executing it, loads the package's jsii assembly (which
every submodule needs), and imports a submodule only when an attribute names it::

    from constructs_lib._providers import aws
    aws.sqs_queue.SqsQueue(self, "Queue", ...)

``SD_EAGER_PROVIDER_IMPORT=1`` switches back to the plain, eager import; a test proves the
synthesized JSON is byte-identical either way.

The registered package stays usable by the code around the library: its submodules are
attributes on first access (``cdktf_cdktf_provider_aws.vpc``), and ``from
cdktf_cdktf_provider_aws import vpc`` and ``import cdktf_cdktf_provider_aws.vpc`` work as
they do without the library. A package imported before the library is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import threading
from collections.abc import Callable
from types import ModuleType

from constructs_lib import _cdktf  # noqa: F401 - jsii environment first

EAGER_ENV = "SD_EAGER_PROVIDER_IMPORT"
# The hashicorp/aws releases the synthesized configuration works with: 5.x from 5.99 (the
# bindings are generated from 5.99.1; nothing older is checked) and 6.x, whose schema has
# every resource, argument and attribute used, unchanged and not deprecated
# (tests/synth/test_provider_compat.py). A stack declares it in required_providers.
AWS_PROVIDER_VERSIONS = ">= 5.99, < 7.0"
# The hashicorp/helm releases the releases' arguments (values, the provider's kubernetes
# block with exec) are written for: 2.17 and later 2.x; the Helm bindings are 2.17.0's.
HELM_PROVIDER_VERSIONS = "~> 2.17"


def import_submodule(package: str, name: str) -> ModuleType:
    """``<package>.<name>``; ``AttributeError`` when the package has no such submodule."""
    if name.startswith("_"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{name}":
            raise  # the submodule exists but something it imports does not
        raise AttributeError(f"{package} has no submodule {name!r}") from None


def _submodule_attributes(root: ModuleType) -> tuple[Callable[[str], ModuleType],
                                                     Callable[[], list[str]]]:
    """The PEP 562 ``__getattr__`` and ``__dir__`` of a package registered unexecuted."""
    package = root.__name__

    def __getattr__(name: str) -> ModuleType:
        return import_submodule(package, name)

    def __dir__() -> list[str]:
        names = {m.name for m in pkgutil.iter_modules(root.__path__) if not m.name.startswith("_")}
        return sorted(names | set(vars(root)))

    return __getattr__, __dir__


class ProviderBindings:
    """Attribute access to a prebuilt provider's submodules, imported on first use.

    Creating one registers the package (unless it is already imported, or eager imports are
    asked for): from then on ``import <package>.<submodule>`` anywhere in the process loads
    that submodule alone.
    """

    def __init__(self, package: str) -> None:
        self._package = package
        self._lock = threading.Lock()
        self._root: ModuleType | None = None
        self._registered = self._register()

    @property
    def package(self) -> str:
        return self._package

    def _register(self) -> bool:
        if os.environ.get(EAGER_ENV) == "1" or self._package in sys.modules:
            return False
        spec = importlib.util.find_spec(self._package)
        if spec is None or spec.loader is None:
            return False  # reported on first use
        root = importlib.util.module_from_spec(spec)
        # Registered but not executed: its __init__ would import every submodule.
        # Submodules load on attribute access instead, for this library and for any
        # other code of the process.
        root.__getattr__, root.__dir__ = _submodule_attributes(root)  # type: ignore[attr-defined]
        root.__all__ = []  # as the package's own __init__ declares
        sys.modules[self._package] = root
        return True

    def _load_root(self) -> ModuleType:
        with self._lock:
            if self._root is not None:
                return self._root
            root = sys.modules.get(self._package)
            if self._registered and root is not None:
                # The jsii assembly every submodule needs, once.
                importlib.import_module(f"{self._package}._jsii")
            else:
                try:
                    root = importlib.import_module(self._package)
                except ModuleNotFoundError as exc:
                    if exc.name != self._package:
                        raise
                    raise ModuleNotFoundError(
                        f"provider bindings {self._package!r} are not installed; "
                        "run `make install`", name=self._package) from None
            self._root = root
            return root

    def __getattr__(self, submodule: str) -> ModuleType:
        if submodule.startswith("_"):
            raise AttributeError(submodule)
        self._load_root()
        return import_submodule(self._package, submodule)


aws = ProviderBindings("cdktf_cdktf_provider_aws")
helm = ProviderBindings("cdktf_cdktf_provider_helm")
kubernetes = ProviderBindings("cdktf_cdktf_provider_kubernetes")

__all__ = [
    "AWS_PROVIDER_VERSIONS",
    "EAGER_ENV",
    "HELM_PROVIDER_VERSIONS",
    "ProviderBindings",
    "aws",
    "helm",
    "import_submodule",
    "kubernetes",
]
