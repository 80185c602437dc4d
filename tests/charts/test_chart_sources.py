"""Where the upstream chart archives come from (tests/support/upstream_charts.py).

The pull is exercised against a chart repository served on loopback: an ``index.yaml`` and
archives, packaged and indexed with the Helm SDK, served by a counting HTTP server, so each
test sees whether the network was used. OCI registries go through the same ``helm pull``
entry point; no OCI registry runs here.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import helm_python as helm
import pytest

from tests.support.charts import REPO_ROOT
from tests.support.upstream_charts import (
    MIRROR_VARIABLE,
    ChartPin,
    ChartUnavailable,
    cache_path,
    cache_root,
    chart_archive,
    pull,
    require_chart,
    upstream_releases,
)


@dataclass
class Repository:
    """A chart repository on loopback."""

    url: str

    def pin(self, version: str = "0.1.0", name: str = "demo") -> ChartPin:
        return ChartPin(repository=self.url, name=name, version=version)


@dataclass
class Served:
    """The repositories of one loopback server and every path it has answered."""

    repos: dict[str, Repository]
    requests: list[str] = field(default_factory=list)

    def log(self) -> list[str]:
        return list(self.requests)


def _package(workdir: Path, destination: Path, versions: tuple[str, ...]) -> None:
    chart = workdir / "demo"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.0.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    destination.mkdir(parents=True, exist_ok=True)
    for version in versions:
        helm.package(chart, destination=destination, version=version)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """Two repositories on one loopback server: ``main`` (demo 0.1.0 and 0.2.0) and
    ``other`` (demo 0.1.0, packaged separately)."""
    root = tmp_path_factory.mktemp("chart-repo")
    _package(root / "src", root / "site" / "main", ("0.1.0", "0.2.0"))
    _package(root / "src", root / "site" / "other", ("0.1.0",))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)  # called once for every answered request

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root / "site")))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    result = Served(repos={name: Repository(url=f"{base}/{name}") for name in ("main", "other")},
                    requests=requests)
    for name, repo in result.repos.items():
        helm.repo_index_generate(root / "site" / name, base_url=repo.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def repo(served) -> Repository:
    return served.repos["main"]


def _chart_of(archive: Path) -> tuple[str, str]:
    with helm.Chart.load(os.fspath(archive)) as chart:
        return chart.name, chart.version


# --- pins come from the plan ----------------------------------------------------------------


def _doc(**karpenter_version: str) -> dict:
    version = karpenter_version.get("version", "1.14.1")
    return {"resource": {"helm_release": {
        "K": {"name": "karpenter", "namespace": "kube-system", "chart": "karpenter",
              "repository": "oci://public.ecr.aws/karpenter", "version": version,
              "skip_crds": True, "values": ["a: 1\nb: {c: 2}\n", "b: {d: 3}\n"]},
        "Pool": {"name": "gpu-x", "namespace": "kube-system", "chart": "assets/GpuPool/1"},
    }}}


def test_pins_are_read_from_the_plans_helm_releases():
    releases = upstream_releases(_doc())
    assert list(releases) == ["karpenter"]  # a local chart is not an upstream release
    release = releases["karpenter"]
    assert release.pin == ChartPin(repository="oci://public.ecr.aws/karpenter",
                                   name="karpenter", version="1.14.1")
    assert release.pin.archive_name == "karpenter-1.14.1.tgz"
    assert release.values == {"a": 1, "b": {"c": 2, "d": 3}}  # later documents win
    assert (release.address, release.namespace, release.skip_crds) == (
        "helm_release.K", "kube-system", True)
    assert upstream_releases(_doc(version="1.15.0"))["karpenter"].pin.version == "1.15.0"


def test_the_example_plan_pins_the_configured_versions(synthesized, example_config):
    pins = {name: r.pin for name, r in upstream_releases(synthesized.doc).items()}
    assert pins == {
        "karpenter-crd": ChartPin(repository="oci://public.ecr.aws/karpenter",
                                  name="karpenter-crd",
                                  version=example_config.karpenter.chart_version),
        "karpenter": ChartPin(repository="oci://public.ecr.aws/karpenter", name="karpenter",
                              version=example_config.karpenter.chart_version),
        "keda": ChartPin(repository="https://kedacore.github.io/charts", name="keda",
                         version=example_config.keda.chart_version),
    }


# --- the cache ---------------------------------------------------------------------------------


def test_the_cache_lives_outside_the_work_tree(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "sd-async-eks" / "charts"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "sd-async-eks" / "charts"
    assert REPO_ROOT not in cache_root().parents


def test_cache_keys_separate_repository_name_and_version(tmp_path):
    base = ChartPin(repository="https://charts.example.com", name="demo", version="0.1.0")
    keys = {cache_path(pin, tmp_path) for pin in (
        base,
        ChartPin(repository="https://charts.example.com", name="demo", version="0.2.0"),
        ChartPin(repository="https://charts.example.com", name="other", version="0.1.0"),
        ChartPin(repository="https://charts.example.com/", name="demo", version="0.1.0"),
        ChartPin(repository="oci://charts.example.com", name="demo", version="0.1.0"),
    )}
    assert len(keys) == 5
    assert cache_path(base, tmp_path).name == "demo-0.1.0.tgz"
    assert cache_path(base, tmp_path) == cache_path(ChartPin(**base.__dict__), tmp_path)


def test_a_pull_fills_the_cache_and_the_next_use_needs_no_network(served, repo, tmp_path):
    pin = repo.pin("0.1.0")
    archive = chart_archive(pin, cache=tmp_path)
    assert archive == cache_path(pin, tmp_path)
    assert _chart_of(archive) == ("demo", "0.1.0")
    pulled = served.log()
    assert any(p.endswith("/demo-0.1.0.tgz") for p in pulled)
    assert chart_archive(pin, cache=tmp_path) == archive
    assert served.log() == pulled  # served from the cache
    assert [p.name for p in archive.parent.iterdir()] == ["demo-0.1.0.tgz"]  # no leftovers


def test_each_version_and_repository_has_its_own_cache_entry(served, tmp_path):
    main, other = served.repos["main"], served.repos["other"]
    first = chart_archive(main.pin("0.1.0"), cache=tmp_path)
    second = chart_archive(main.pin("0.2.0"), cache=tmp_path)
    third = chart_archive(other.pin("0.1.0"), cache=tmp_path)
    assert len({first, second, third}) == 3
    assert [_chart_of(a) for a in (first, second, third)] == [
        ("demo", "0.1.0"), ("demo", "0.2.0"), ("demo", "0.1.0")]
    assert first.parent == second.parent != third.parent
    assert sum(p.startswith("/other/") and p.endswith(".tgz") for p in served.log()) == 1


def test_a_version_the_repository_lacks_is_unavailable_and_caches_nothing(repo, tmp_path):
    pin = repo.pin("9.9.9")
    with pytest.raises(ChartUnavailable) as info:
        chart_archive(pin, cache=tmp_path)
    assert MIRROR_VARIABLE in str(info.value) and "demo-9.9.9.tgz" in str(info.value)
    assert not cache_path(pin, tmp_path).exists()
    assert list(cache_path(pin, tmp_path).parent.iterdir()) == []


def test_a_cache_entry_holding_another_chart_is_refused(repo, tmp_path):
    wrong = chart_archive(repo.pin("0.2.0"), cache=tmp_path)
    pin = repo.pin("0.1.0")
    cache_path(pin, tmp_path).write_bytes(wrong.read_bytes())
    with pytest.raises(ChartUnavailable, match=re.escape("holds chart demo 0.2.0, not demo 0.1.0")):
        chart_archive(pin, cache=tmp_path)


def test_a_pull_that_never_answers_is_abandoned(tmp_path):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        pin = ChartPin(repository=f"http://127.0.0.1:{silent.getsockname()[1]}",
                       name="demo", version="0.1.0")
        with pytest.raises(ChartUnavailable, match="did not finish in 1 s"):
            pull(pin, tmp_path / "out", timeout_seconds=1)


# --- the mirror ------------------------------------------------------------------------------


def test_the_mirror_is_used_alone_when_set(served, repo, tmp_path):
    mirror = tmp_path / "mirror"
    source = chart_archive(repo.pin("0.2.0"), cache=tmp_path / "cache")
    mirror.mkdir()
    (mirror / "demo-0.2.0.tgz").write_bytes(source.read_bytes())
    before = served.log()
    assert chart_archive(repo.pin("0.2.0"), mirror=mirror) == mirror / "demo-0.2.0.tgz"
    with pytest.raises(ChartUnavailable) as info:  # reachable, but the mirror lacks it
        chart_archive(repo.pin("0.1.0"), mirror=mirror, cache=tmp_path / "cache")
    assert served.log() == before  # the repository was never asked
    assert str(info.value).startswith(f"{MIRROR_VARIABLE}={mirror} has no demo-0.1.0.tgz")


def test_a_misnamed_mirror_archive_is_refused(repo, tmp_path):
    source = chart_archive(repo.pin("0.2.0"), cache=tmp_path / "cache")
    (tmp_path / "demo-0.1.0.tgz").write_bytes(source.read_bytes())
    with pytest.raises(ChartUnavailable, match=re.escape("not demo 0.1.0")):
        chart_archive(repo.pin("0.1.0"), mirror=tmp_path)


# --- outside CI a missing chart skips, in CI it fails -----------------------------------------


@pytest.mark.parametrize("mirror", [False, True])
def test_a_missing_chart_skips_outside_ci_and_fails_in_ci(monkeypatch, tmp_path, mirror):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    pin = ChartPin(repository=f"http://127.0.0.1:{port}", name="demo", version="0.1.0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if mirror:
        monkeypatch.setenv(MIRROR_VARIABLE, str(tmp_path))
    else:
        monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_chart(pin)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_chart(pin)
    for outcome in (skipped, failed):
        assert MIRROR_VARIABLE in str(outcome.value) and "demo-0.1.0.tgz" in str(outcome.value)
    assert "CI must render every upstream chart" in str(failed.value)
