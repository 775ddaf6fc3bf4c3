"""The request handler the tests' local HTTP servers (a CDN, a slow or short-answering host) build on."""

from __future__ import annotations

import http.server


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, as real media hosts answer, and no access log: the test output stays quiet,
    the servers' own request lists are the record."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass
