"""Input fetching: the SSRF guard, size and time caps, decoding (real loopback HTTP).

Nothing here connects off this machine: refused addresses are refused before any connection,
and the network fence (conftest) turns any slip into a failure.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import boto3
import pytest

from agent.config import load_config
from agent.errors import PermanentError, TransientError
from agent.inputs import InputFetcher
from task_contract.netguard import forbidden_reason
from tests.fakes.base import render_png
from tests.fakes.images import FakeImageHost
from tests.support.tls import self_signed

BASE = {
    "SQS_QUEUE_URL": "http://127.0.0.1/q", "SNS_TOPIC_ARN": "arn:aws:sns:us-west-2:1:t",
    "S3_BUCKET": "b", "RUNTIME_TYPE": "sdwebui", "RUNTIME_NAME": "sdruntime",
    "AGENT_INPUT_TIMEOUT_SECONDS": "2",
}


def fetcher(s3=None, resolver=None, ca_bundle=True, **env: str) -> InputFetcher:
    return InputFetcher(load_config({**BASE, **env}), s3, resolver=resolver, ca_bundle=ca_bundle)


def permissive(**env: str) -> InputFetcher:
    """http allowed and 127.0.0.1 exempt: only for tests that need a working source."""
    return fetcher(AGENT_ALLOW_HTTP="true", AGENT_INPUT_ALLOW_ADDRESSES="127.0.0.1/32", **env)


@pytest.mark.parametrize(("address", "reason"), [
    ("169.254.169.254", "link-local"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "not globally routable"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("240.0.0.1", "private"),  # Python counts 240/4 as private
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fd00::1", "private"),
    ("fd00:ec2::254", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
])
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::6810:85e5",
                                     "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("url", "fragment"), [
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("ftp://example.com/x.png", "scheme 'ftp' is not allowed"),
    ("gopher://example.com/", "scheme 'gopher' is not allowed"),
    ("http://example.com/x.png", "scheme 'http' is not allowed"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "a private address"),
    ("https://10.0.0.1/x.png", "10.0.0.1, a private address"),
    ("https://user:pw@example.com/x.png", "must not carry credentials"),
])
def test_refused_urls(url: str, fragment: str) -> None:
    with pytest.raises(PermanentError) as info:
        fetcher(resolver=lambda h, p: ["93.184.216.34"]).fetch(url)
    assert info.value.code == "input_refused"
    assert fragment in info.value.message


def test_loopback_image_host_is_refused_by_default(image_host: FakeImageHost) -> None:
    guard = fetcher(AGENT_ALLOW_HTTP="true")
    with pytest.raises(PermanentError) as info:
        guard.fetch(f"{image_host.url}/img.png")
    assert "127.0.0.1, a loopback address" in info.value.message
    assert image_host.hits() == 0  # refused before connecting


def test_name_resolving_to_metadata_service_is_refused_after_dns(
        image_host: FakeImageHost) -> None:
    resolver_calls = []

    def resolver(host: str, port: int) -> list[str]:
        resolver_calls.append(host)
        return ["169.254.169.254"]

    with pytest.raises(PermanentError) as info:
        fetcher(resolver=resolver).fetch("https://innocent.example/img.png")
    assert resolver_calls == ["innocent.example"]
    assert "resolves to 169.254.169.254" in info.value.message


def test_any_private_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(PermanentError):
        fetcher(resolver=lambda h, p: ["93.184.216.34", "10.0.0.7"]).fetch(
            "https://mixed.example/x.png")


def test_allowed_source_works_and_redirect_to_private_is_refused(
        image_host: FakeImageHost) -> None:
    guard = permissive()
    assert guard.fetch(f"{image_host.url}/img.png") == image_host.png
    second = FakeImageHost(host="127.0.0.2").start()  # loopback, but not in the allow list
    try:
        for target in (f"{second.url}/img.png", "http://169.254.169.254/latest/meta-data/",
                       "http://10.0.0.1/x.png", "file:///etc/passwd"):
            with pytest.raises(PermanentError) as info:
                guard.fetch(f"{image_host.url}/redirect?to={target}")
            assert info.value.code == "input_refused"
        assert second.hits() == 0
    finally:
        second.stop()


def test_redirect_within_allowed_sources_is_followed(image_host: FakeImageHost) -> None:
    data = permissive().fetch(f"{image_host.url}/redirect?to=/img-2.png")
    assert data == image_host.png


def test_size_cap_by_header_and_by_stream(image_host: FakeImageHost) -> None:
    guard = permissive(AGENT_MAX_INPUT_BYTES="100000")
    with pytest.raises(PermanentError) as info:
        guard.fetch(f"{image_host.url}/huge?bytes=200000")
    assert "larger than 100000 bytes" in info.value.message


def test_bytes_must_decode_as_an_image(image_host: FakeImageHost) -> None:
    with pytest.raises(PermanentError) as info:
        permissive().fetch(f"{image_host.url}/text")
    assert "not a decodable image" in info.value.message


def test_pixel_cap(image_host: FakeImageHost) -> None:
    with pytest.raises(PermanentError) as info:
        permissive(AGENT_MAX_INPUT_PIXELS="100").fetch(f"{image_host.url}/img.png")
    assert "24x24 pixels, above the limit of 100" in info.value.message


def test_http_errors_are_classified(image_host: FakeImageHost) -> None:
    guard = permissive()
    with pytest.raises(PermanentError):
        guard.fetch(f"{image_host.url}/missing.png")
    with pytest.raises(TransientError):
        guard.fetch(f"{image_host.url}/unavailable")


def test_hanging_source_times_out_as_transient(image_host: FakeImageHost) -> None:
    image_host.hang_next("/img.png")
    with pytest.raises(TransientError) as info:
        permissive(AGENT_INPUT_TIMEOUT_SECONDS="0.5").fetch(f"{image_host.url}/img.png")
    assert info.value.code == "input_unavailable"
    image_host.release.set()


def test_unreachable_source_is_transient() -> None:
    dead = FakeImageHost().start()
    url = f"{dead.url}/img.png"
    dead.stop()
    with pytest.raises(TransientError):
        permissive().fetch(url)


def test_s3_inputs(agent_emulator) -> None:
    s3 = boto3.client("s3", endpoint_url=agent_emulator.endpoint, region_name="us-west-2")
    s3.create_bucket(Bucket="inputs-unit",
                     CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    png = render_png("s3-input", 16, 16)
    s3.put_object(Bucket="inputs-unit", Key="a/in.png", Body=png)
    s3.put_object(Bucket="inputs-unit", Key="big.png", Body=png + b"\0" * 5000)
    guard = fetcher(s3=s3, AGENT_MAX_INPUT_BYTES="4000")
    assert guard.fetch("s3://inputs-unit/a/in.png") == png
    with pytest.raises(PermanentError) as info:
        guard.fetch("s3://inputs-unit/big.png")
    assert "larger than 4000" in info.value.message
    with pytest.raises(PermanentError) as missing:
        guard.fetch("s3://inputs-unit/nope.png")
    assert missing.value.code == "input_unavailable"


# -- TLS: the connection is pinned to the checked address, the certificate still verified ----
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "images.test")


def test_https_is_pinned_to_the_checked_address_and_verified(tls_files) -> None:
    cert_path, key_path = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    host = FakeImageHost(ssl_context=context).start()
    resolved: list[str] = []

    def resolver(name: str, port: int) -> list[str]:
        resolved.append(name)
        return ["127.0.0.1"]

    try:
        guard = fetcher(resolver=resolver, ca_bundle=str(cert_path),
                        AGENT_INPUT_ALLOW_ADDRESSES="127.0.0.1/32")
        assert guard.fetch(f"https://images.test:{host.port}/img.png") == host.png
        with pytest.raises(PermanentError) as info:  # certificate is for images.test only
            guard.fetch(f"https://other.test:{host.port}/img.png")
        assert "TLS verification failed" in info.value.message
        assert resolved == ["images.test", "other.test"]
    finally:
        host.stop()
