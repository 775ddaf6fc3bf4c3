"""Which remote sources a metadata row may make us fetch, and what we accept from them.

A metadata row comes from outside (a landing zone others can write), so its uri must not turn a
worker into a proxy to internal services (SSRF) or into a reader of buckets it should not touch:

- http(s): hosts may be allow-listed and deny-listed (an entry matches the host and its
  subdomains); the host is resolved and **every** address must be public: private, loopback,
  link-local, shared, reserved, multicast and unspecified addresses are denied unless a network
  of the deployment's `open_networks` (CIDR) holds them. Redirects are followed by hand, each
  target checked the same way before it is asked, and each connection goes to an address that
  was checked (pinned_http.py: no second lookup a rebinding DNS server could answer differently).
- the response's Content-Type must be one of `content_types` (a prefix such as ``video/``
  matches every video type) before a byte is saved; sizes are capped by the caller (Content-Length
  first, then the streamed bytes).
- s3: only the buckets in `s3_buckets`.
- a downloaded file must start like a video container (`check_video_file`): a server, or a page
  yt-dlp reads, that names one type and sends another is caught by the bytes themselves.

The policy is plain, picklable data: the fetch runs in a child process per video.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from haic_resources.video.item_error import ItemError

DEFAULT_CONTENT_TYPES = ("video/", "application/octet-stream", "binary/octet-stream", "application/mp4")
DEFAULT_MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


class PolicyError(ItemError):
    """The fetch policy refuses this source; `reason` names the rule and the value."""


@dataclass(frozen=True)
class FetchPolicy:
    allow_hosts: tuple[str, ...] = ()  # empty: every host that passes the other rules
    deny_hosts: tuple[str, ...] = ()
    open_networks: tuple[str, ...] = ()  # CIDRs whose private addresses the deployment opens explicitly
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    s3_buckets: tuple[str, ...] = ()  # the only buckets rows may name
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def check_host(self, url: str, source: str) -> str:
        """Raise PolicyError unless `url` is http(s) to a host the allow and deny lists let through
        (names only, no DNS: what also decides whether an already-staged copy may still be used).
        Returns the host."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise PolicyError(f"fetch policy: scheme {parts.scheme!r} is not http(s): {source}")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise PolicyError(f"fetch policy: no host in {source}")
        if any(_host_matches(host, entry) for entry in self.deny_hosts):
            raise PolicyError(f"fetch policy: host {host} is denied: {source}")
        if self.allow_hosts and not any(_host_matches(host, entry) for entry in self.allow_hosts):
            raise PolicyError(f"fetch policy: host {host} is not in the allowed hosts: {source}")
        return host

    def check_url(self, url: str, source: str) -> str:
        """Raise PolicyError unless `url` is http(s) to an allowed host whose every address is allowed.
        Returns the address to connect to (the first one checked): connect there, never resolve again."""
        parts = urlsplit(url)
        host = self.check_host(url, source)
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise PolicyError(f"fetch policy: bad port in {source}")
        addresses = _addresses(host, port, source)
        for address in addresses:
            if not self._address_allowed(address):
                raise PolicyError(f"fetch policy: host {host} resolves to {_kind(address)} address {address}, "
                                  f"denied: {source}")
        return str(addresses[0])

    def check_content_type(self, value: str | None, source: str) -> None:
        media_type = (value or "").split(";")[0].strip().lower()
        if not media_type:
            raise PolicyError(f"fetch policy: no Content-Type from {source}")
        if not any(media_type.startswith(t) if t.endswith("/") else media_type == t for t in self.content_types):
            raise PolicyError(f"fetch policy: Content-Type {media_type} is not a video type: {source}")

    def check_s3(self, bucket: str, source: str) -> None:
        if bucket not in self.s3_buckets:
            raise PolicyError(f"fetch policy: bucket {bucket} is not in the allowed buckets: {source}")

    def _address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if any(address in ipaddress.ip_network(n, strict=False) for n in self.open_networks):
            return True
        return address.is_global and not address.is_multicast


def open_checked(session, url: str, policy: FetchPolicy, source: str, *, method: str = "GET",
                 check_type: bool = True, **request):
    """Send `method` to `url` following redirects by hand, each target checked by `policy` before it
    is asked and connected to at the address that was checked; a success's Content-Type is checked
    (unless `check_type` is False) before its body is read. `session` supplies headers, cookies and
    TLS verification; no proxy is used (a proxy would resolve the name again). Returns the
    streaming response (the caller closes it)."""
    import requests

    from haic_resources.video.pinned_http import pinned_adapter

    current = url
    timeout = request.pop("timeout", None)
    for _ in range(policy.max_redirects + 1):
        address = policy.check_url(current, source)
        prepared = session.prepare_request(requests.Request(method, current, **request))
        # The environment may name a CA bundle (REQUESTS_CA_BUNDLE); its proxies are not used.
        tls = session.merge_environment_settings(current, {}, True, session.verify, session.cert)
        resp = pinned_adapter(address).send(prepared, stream=True, timeout=timeout, verify=tls["verify"],
                                            cert=tls["cert"], proxies={})
        requests.cookies.extract_cookies_to_jar(session.cookies, prepared, resp.raw)
        if resp.status_code not in _REDIRECTS:
            if resp.status_code < 300 and check_type:
                try:
                    policy.check_content_type(resp.headers.get("Content-Type"), source)
                except PolicyError:
                    resp.close()
                    raise
            return resp
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            raise PolicyError(f"fetch policy: redirect without a Location from {source}")
        current = urljoin(current, location)
        if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
            method, request = ("HEAD" if method == "HEAD" else "GET"), {k: v for k, v in request.items() if k != "data"}
    raise PolicyError(f"fetch policy: more than {policy.max_redirects} redirects from {source}")


def check_video_file(path, source: str) -> None:
    """Raise PolicyError unless the file at `path` starts like a video container."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if sniff_video(head) is None:
        raise PolicyError(f"fetch policy: the file is not a video (it looks like {_looks_like(head)}): {source}")


def sniff_video(head: bytes) -> str | None:
    """The video container that the first bytes of a file announce, or None."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpeg-ts"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    return None


_SNIFF_BYTES = 512
_NOT_VIDEO = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
              (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "gzip data"))


def _looks_like(head: bytes) -> str:
    for magic, name in _NOT_VIDEO:
        if head.startswith(magic):
            return name
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if not head:
        return "nothing: it is empty"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown binary data"


def _host_matches(host: str, entry: str) -> bool:
    entry = entry.strip().lower().rstrip(".")
    return bool(entry) and (host == entry or host.endswith("." + entry))


def _addresses(host: str, port: int, source: str) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise PolicyError(f"fetch policy: cannot resolve host {host}: {source}")
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        addresses.append(address)
    return addresses


def _kind(address) -> str:
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"
