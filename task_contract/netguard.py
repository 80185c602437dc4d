"""The guard for every URL a client gives and the service then connects to (SSRF).

Input images the agent fetches and the webhooks the deliverer calls are user input reached
from inside the service's network, so both go through the same rules: the host name is
resolved here and EVERY address it resolves to must be a public unicast address (loopback,
private, link-local such as the instance metadata service at 169.254.169.254, unique-local,
multicast, reserved and unspecified addresses are refused, also inside IPv4-mapped and NAT64
IPv6 addresses); the connection is then pinned to the address that was checked (so a second
DNS answer cannot swap it), with TLS still verified against the host name; redirects are
never followed here (a caller that follows them checks each target again).

Standard library only (the Lambda runtime has no ``requests``): :func:`pinned_connection`
is an :mod:`http.client` connection; the agent pins its ``requests`` session to the address
:func:`resolve_checked` returns.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
# Why an address is refused under the caller's settings, or None (default: forbidden_reason).
AddressRule = Callable[[IpAddress], "str | None"]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_resolver_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dns")


class Refused(Exception):
    """The host resolves to an address the rules refuse (permanent)."""

    def __init__(self, host: str, address: IpAddress, reason: str) -> None:
        super().__init__(f"{host!r} resolves to {address}, a {reason} address")
        self.host = host
        self.address = address
        self.reason = reason


class Unresolvable(Exception):
    """The host name does not exist (permanent)."""


class ResolutionUnavailable(Exception):
    """Resolving the host timed out or failed for now (worth a retry)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def forbidden_reason(address: IpAddress) -> str | None:
    """Why an address must not be connected to, or None when it is public unicast."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return forbidden_reason(address.ipv4_mapped)
        if address in _NAT64:
            return forbidden_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def loopback_allowed(address: IpAddress) -> str | None:
    """:func:`forbidden_reason`, except that loopback addresses pass (local mode only)."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if (mapped or address).is_loopback:
        return None
    return forbidden_reason(address)


def literal_address(host: str) -> IpAddress | None:
    """The address a host names literally (``10.0.0.1``, ``[::1]``), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check_addresses(host: str, addresses: Iterable[str],
                    rule: AddressRule = forbidden_reason) -> IpAddress:
    """The first of ``addresses`` once every one of them passes ``rule``; else
    :class:`Refused` (a name with one bad address is refused as a whole)."""
    parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not parsed:
        raise ResolutionUnavailable(f"{host!r} resolved to no address")
    for address in parsed:
        reason = rule(address)
        if reason is not None:
            raise Refused(host, address, reason)
    return parsed[0]


def resolve_checked(host: str, port: int, *, timeout: float,
                    resolver: Resolver = system_resolver,
                    rule: AddressRule = forbidden_reason) -> IpAddress:
    """Resolve ``host`` (a literal address is taken as it is) within ``timeout`` seconds and
    check every address: :class:`Refused`, :class:`Unresolvable` or
    :class:`ResolutionUnavailable` when it cannot be used."""
    literal = literal_address(host)
    if literal is not None:
        return check_addresses(host, [str(literal)], rule)
    future = _resolver_pool.submit(resolver, host, port)
    try:
        addresses = future.result(timeout=max(0.1, timeout))
    except FutureTimeout as exc:
        raise ResolutionUnavailable(f"resolving {host!r} timed out") from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {host!r}: {exc}") from exc
    except OSError as exc:
        raise ResolutionUnavailable(f"resolving {host!r}: {exc}") from exc
    return check_addresses(host, addresses, rule)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and certificate checks use the host name."""

    def __init__(self, hostname: str, address: str, port: int, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self._hostname = hostname
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._hostname)


def pinned_connection(scheme: str, hostname: str, address: IpAddress, port: int, *,
                      timeout: float, context: ssl.SSLContext | None = None
                      ) -> http.client.HTTPConnection:
    """An HTTP(S) connection to ``address`` for ``hostname`` (send ``Host`` yourself:
    :func:`host_header`). HTTPS verifies the certificate against ``hostname`` with
    ``context`` (default: the system's trust store)."""
    ip_text = str(address)
    if scheme == "https":
        return _PinnedHTTPSConnection(hostname, ip_text, port, timeout,
                                      context or ssl.create_default_context())
    return http.client.HTTPConnection(ip_text, port, timeout=timeout)


def host_header(host: str, port: int | None) -> str:
    """The ``Host`` header for a URL's host and explicit port (IPv6 in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return shown if port is None else f"{shown}:{port}"
