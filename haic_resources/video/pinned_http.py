"""HTTP connections to the address the fetch policy vetted, never to a second answer of the resolver.

The policy resolves a host and checks every address; if the request then resolved the name again,
a DNS server that answers a public address first and an internal one second (DNS rebinding) would
get the check passed and the request sent inside. So the connection is pinned: the socket connects
to the vetted address, while the URL, the Host header, TLS's SNI and the certificate check keep the
name. No proxy is used (a proxy would resolve the name itself).
"""

from __future__ import annotations

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


def pinned_adapter(address: str) -> HTTPAdapter:
    """A requests transport adapter whose every connection goes to `address` (an IP literal)."""
    return _PinnedAdapter(address)


def _pinned(base: type) -> type:
    class Pinned(base):
        pinned_address = ""

        def _new_conn(self):
            # urllib3's own _new_conn connects to the name (a second lookup); connect to the pin instead.
            original = self._dns_host
            self._dns_host = self.pinned_address
            try:
                return super()._new_conn()
            finally:
                self._dns_host = original

    return Pinned


_PinnedHTTP, _PinnedHTTPS = _pinned(HTTPConnection), _pinned(HTTPSConnection)


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str):
        self._address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http = type("PinnedHTTPConnection", (_PinnedHTTP,), {"pinned_address": self._address})
        https = type("PinnedHTTPSConnection", (_PinnedHTTPS,), {"pinned_address": self._address})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

