"""The client's IP address, trusting X-Forwarded-For only as far as TRUSTED_PROXY_COUNT says."""

import ipaddress
import socket

from django.conf import settings
from django.http import HttpRequest

# An IPv6 client usually holds a whole /64, so counting single addresses would give it 2^64 budgets.
IPV6_PREFIX_LENGTH = 64
UNKNOWN_CLIENT = "unknown"


def client_ip(request: HttpRequest) -> str | None:
    """The socket address, or the address the N-th trusted proxy from the right saw."""
    return client_ip_from(
        remote=request.META.get("REMOTE_ADDR") or None,
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def client_ip_from(*, remote: str | None, forwarded_for: str) -> str | None:
    """`client_ip` from the socket address and the X-Forwarded-For header as they arrived."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _is_canonical_ipv4(ip: str) -> bool:
    """Whether `ip` is an IPv4 address written as `ipaddress` writes it (the usual case, checked
    without building an address object)."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, ip)) == ip
    except (OSError, ValueError):
        return False


def client_network(request: HttpRequest) -> str:
    """Who a per-IP limit counts: the IPv4 address, or the /64 that holds the IPv6 address.

    Requests without a usable address share one budget rather than escaping the limit.
    """
    return network_of(client_ip(request))


def network_of(ip: str | None) -> str:
    """The budget an address counts against (see `client_network`)."""
    if ip and _is_canonical_ipv4(ip):
        return ip
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return UNKNOWN_CLIENT
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    network = ipaddress.IPv6Network((int(address), IPV6_PREFIX_LENGTH), strict=False)
    return str(network)
