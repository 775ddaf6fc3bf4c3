"""FFmpeg's requests sent through the fetch policy: a relay on the loopback interface.

yt-dlp downloads a section of a video (`download_ranges`) by handing the media URL to FFmpeg, which
then resolves the name itself, follows redirects itself and reads as much as it likes: none of the
fetch policy would hold. So FFmpeg is given a URL of this relay instead (127.0.0.1, a random port,
an unguessable path per media URL), and the relay asks the real URL through
fetch_policy.open_checked (each hop vetted and pinned, no proxy), forwarding FFmpeg's Range
requests, with one byte budget over everything it relays. A refusal is kept (`refusal`) so the
caller reports the policy's reason rather than FFmpeg's.
"""

from __future__ import annotations

import http.server
import secrets
import threading

import requests
import urllib3

from haic_resources.video.fetch_policy import FetchPolicy, PolicyError, open_checked
from haic_resources.video.item_error import ItemError

_FORWARDED_REQUEST = ("Range", "User-Agent", "Accept", "Accept-Language", "Referer", "Cookie", "If-Range")
_FORWARDED_RESPONSE = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "ETag")
_CHUNK = 1 << 16


class RelayError(ItemError):
    """The relay refused or cut off what FFmpeg asked for; `reason` says why."""


class PolicyRelay:
    """`with PolicyRelay(...) as relay: ffmpeg_url = relay.url_for(media_url)`."""

    def __init__(self, policy: FetchPolicy, source: str, max_bytes: int, timeout: float):
        self.policy, self.source, self.timeout = policy, source, timeout
        self.refusal: ItemError | None = None
        self._targets: dict[str, str] = {}
        self._left, self._max_bytes, self._lock = max_bytes, max_bytes, threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RelayHandler)
        self._server.daemon_threads = True
        self._server.relay = self

    def url_for(self, url: str) -> str:
        token = secrets.token_urlsafe(24)
        self._targets[token] = url
        return f"http://127.0.0.1:{self._server.server_address[1]}/{token}"

    def __enter__(self) -> PolicyRelay:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _refuse(self, error: ItemError) -> None:
        if self.refusal is None:
            self.refusal = error

    def _spend(self, n: int) -> bool:
        with self._lock:
            self._left -= n
            return self._left >= 0


class _RelayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; the body ends when it closes

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        relay: PolicyRelay = self.server.relay
        target = relay._targets.get(self.path.lstrip("/"))
        if target is None:
            self.send_error(404)
            return
        session = requests.Session()
        session.trust_env = False
        headers = {k: v for k, v in self.headers.items() if k in _FORWARDED_REQUEST}
        try:
            resp = open_checked(session, target, relay.policy, relay.source, method=self.command,
                                check_type=False, headers=headers, timeout=relay.timeout)
        except PolicyError as exc:
            relay._refuse(exc)
            self.send_error(403)
            return
        except requests.RequestException:
            self.send_error(502)
            return
        with resp:
            self.send_response(resp.status_code)
            for name in _FORWARDED_RESPONSE:
                if name in resp.headers:
                    self.send_header(name, resp.headers[name])
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                for chunk in resp.raw.stream(_CHUNK, decode_content=False):
                    if not relay._spend(len(chunk)):
                        relay._refuse(RelayError(f"file exceeds the {relay._max_bytes} byte limit: {relay.source}"))
                        return
                    self.wfile.write(chunk)
            except (OSError, requests.RequestException, urllib3.exceptions.HTTPError):
                return  # FFmpeg hung up (it read what it needed) or the source did

    do_HEAD = do_GET  # noqa: N815
