"""Fetching task input images safely (``s3://``, ``https://``, ``http://`` if allowed).

A task's input URL is user input fetched from inside the VPC, so every hop is checked by
the service's one SSRF guard (:mod:`task_contract.netguard`, which the webhook deliverer
uses too): the scheme is allowed; the host name is resolved here and EVERY address it
resolves to must be a public unicast address (loopback, private, link-local such as the
instance metadata service at 169.254.169.254, unique-local, multicast, reserved and
unspecified addresses are refused); the connection is then pinned to the address that was
checked (so a second DNS answer cannot swap it), with TLS still verified against the host
name; redirects are followed by hand and each target is checked the same way; the body is
capped in size and time and must decode as an image.

Refusals are :class:`PermanentError` (code ``input_refused``); an input that is gone (HTTP
4xx, no such S3 key) is permanent too (``input_unavailable``); timeouts, connection errors
and 5xx are :class:`TransientError`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError
from requests.adapters import HTTPAdapter

from agent import logs
from agent.config import AgentConfig
from agent.errors import PermanentError, TransientError
from agent.images import check_image
from task_contract import netguard
from task_contract.netguard import IpAddress, Resolver

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class _PinnedHttpsAdapter(HTTPAdapter):
    """Connects to a checked IP address while verifying TLS against the original host name."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


class InputFetcher:
    """Fetches one input image by URL under the rules in the module docstring."""

    def __init__(
        self,
        config: AgentConfig,
        s3_client: Any,
        resolver: Resolver | None = None,
        ca_bundle: str | bool = True,
    ) -> None:
        self._config = config
        self._s3 = s3_client
        self._resolver = resolver or netguard.system_resolver
        self._verify = ca_bundle
        self._schemes = {"https", "s3"} | ({"http"} if config.allow_http else set())

    # -- public -------------------------------------------------------------------------
    def fetch(self, url: str) -> bytes:
        """Return the checked bytes of the image at ``url``."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in self._schemes:
            allowed = ", ".join(sorted(f"{s}://" for s in self._schemes))
            raise PermanentError(
                "input_refused",
                f"input URL scheme {scheme or '(none)'!r} is not allowed (allowed: {allowed})",
                [{"url": logs.safe_url(url)}],
            )
        data = self._fetch_s3(url) if scheme == "s3" else self._fetch_http(url)
        check_image(data, self._config.max_input_pixels)
        return data

    def check_address(self, address: IpAddress) -> str | None:
        """Why ``address`` is refused under this configuration, or None."""
        if any(address in network for network in self._config.input_allow_networks):
            return None
        return netguard.forbidden_reason(address)

    # -- S3 ------------------------------------------------------------------------------
    def _fetch_s3(self, url: str) -> bytes:
        parts = urlsplit(url)
        bucket, key = parts.netloc, parts.path.lstrip("/")
        if not bucket or not key:
            raise PermanentError("input_refused", f"malformed S3 URL {logs.safe_url(url)!r}")
        cap = self._config.max_input_bytes
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
            if int(response.get("ContentLength", 0)) > cap:
                response["Body"].close()
                raise self._too_large(url)
            data = response["Body"].read(cap + 1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404") or (
                400 <= status < 500 and status != 429
            ):
                raise PermanentError(
                    "input_unavailable", f"cannot read input {logs.safe_url(url)}: {code}"
                ) from exc
            raise TransientError(
                "input_unavailable", f"S3 error reading input {logs.safe_url(url)}: {code}"
            ) from exc
        except BotoCoreError as exc:
            raise TransientError(
                "input_unavailable", f"S3 error reading input {logs.safe_url(url)}: {exc}"
            ) from exc
        if len(data) > cap:
            raise self._too_large(url)
        return data

    # -- HTTP(S) -------------------------------------------------------------------------
    def _fetch_http(self, url: str) -> bytes:
        deadline = time.monotonic() + self._config.input_timeout_seconds
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            session, response = self._request(current, deadline)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise PermanentError(
                            "input_unavailable",
                            f"input {logs.safe_url(current)} redirected without a Location",
                        )
                    current = urljoin(current, location)
                    scheme = urlsplit(current).scheme.lower()
                    if scheme not in self._schemes - {"s3"}:
                        raise PermanentError(
                            "input_refused",
                            f"input redirected to a disallowed scheme {scheme!r}",
                            [{"url": logs.safe_url(url)}],
                        )
                    continue
                return self._read_body(current, response, deadline)
            finally:
                response.close()
                session.close()
        raise PermanentError(
            "input_refused", f"input {logs.safe_url(url)} redirected more than {MAX_REDIRECTS} "
            "times"
        )

    def _request(self, url: str, deadline: float
                 ) -> tuple[requests.Session, requests.Response]:
        """One hop: resolve and check the host, then GET from the checked address."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if parts.username or parts.password:
            raise PermanentError("input_refused", "input URLs must not carry credentials")
        host = parts.hostname
        if not host:
            raise PermanentError("input_refused", f"input URL has no host: {logs.safe_url(url)}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise PermanentError("input_refused", f"input URL has a bad port: {exc}") from exc
        address = self._resolve_checked(host, port, url, deadline)
        ip_text = f"[{address}]" if address.version == 6 else str(address)
        target = f"{scheme}://{ip_text}:{port}{parts.path or '/'}"
        if parts.query:
            target += f"?{parts.query}"
        host_header = netguard.host_header(host, parts.port)
        remaining = max(0.1, deadline - time.monotonic())
        session = requests.Session()
        session.trust_env = False  # never route user input through a configured proxy
        if scheme == "https":
            session.mount("https://", _PinnedHttpsAdapter(host))
        else:
            session.mount("http://", HTTPAdapter(max_retries=0))
        try:
            return session, session.get(
                target,
                headers={"Host": host_header, "Accept": "image/*", "User-Agent": "sd-queue-agent"},
                allow_redirects=False,
                stream=True,
                timeout=(min(10.0, remaining), remaining),
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            session.close()
            raise PermanentError(
                "input_unavailable", f"TLS verification failed for {logs.safe_url(url)}"
            ) from exc
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            session.close()
            raise TransientError(
                "input_unavailable",
                f"cannot reach input {logs.safe_url(url)}: {type(exc).__name__}",
            ) from exc
        except requests.exceptions.RequestException as exc:
            session.close()
            raise PermanentError(
                "input_unavailable", f"cannot fetch input {logs.safe_url(url)}: {exc}"
            ) from exc

    def _resolve_checked(self, host: str, port: int, url: str, deadline: float) -> IpAddress:
        try:
            return netguard.resolve_checked(
                host, port, timeout=deadline - time.monotonic(), resolver=self._resolver,
                rule=self.check_address)
        except netguard.Refused as exc:
            raise PermanentError(
                "input_refused",
                f"input host {host!r} resolves to {exc.address}, a {exc.reason} address; "
                "inputs may only come from public addresses",
                [{"url": logs.safe_url(url), "address": str(exc.address), "reason": exc.reason}],
            ) from exc
        except netguard.Unresolvable as exc:
            raise PermanentError(
                "input_unavailable", f"cannot resolve input host {host!r}: {exc.__cause__}",
                [{"url": logs.safe_url(url)}],
            ) from exc
        except netguard.ResolutionUnavailable as exc:
            raise TransientError("input_unavailable", str(exc)) from exc

    def _read_body(self, url: str, response: requests.Response, deadline: float) -> bytes:
        status = response.status_code
        if status != 200:
            error_class = (
                TransientError if status >= 500 or status in (408, 429) else PermanentError
            )
            raise error_class(
                "input_unavailable", f"input {logs.safe_url(url)} answered HTTP {status}"
            )
        cap = self._config.max_input_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise self._too_large(url)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise self._too_large(url)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TransientError(
                        "input_unavailable",
                        f"input {logs.safe_url(url)} took longer than "
                        f"{self._config.input_timeout_seconds}s",
                    )
        except requests.exceptions.RequestException as exc:
            raise TransientError(
                "input_unavailable", f"reading input {logs.safe_url(url)}: {type(exc).__name__}"
            ) from exc
        return b"".join(chunks)

    def _too_large(self, url: str) -> PermanentError:
        return PermanentError(
            "input_refused",
            f"input {logs.safe_url(url)} is larger than {self._config.max_input_bytes} bytes",
        )
