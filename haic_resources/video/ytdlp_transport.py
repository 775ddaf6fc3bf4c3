"""Every request yt-dlp makes, sent through the fetch policy.

yt-dlp's own request handlers follow redirects themselves and resolve names again, so a page or
media URL that passed the policy could still lead yt-dlp to an internal address. `GuardedYoutubeDL`
gives yt-dlp one request handler, ours: each request and each redirect hop is checked by the
policy and connected to at the vetted address (fetch_policy.open_checked, the same path as plain
HTTP downloads), no proxy is used, and no response may stream more than the byte limit. The body's
Content-Type is not checked here (the page is HTML); the downloaded file's real type is
(fetch_policy.check_video_file).
"""

from __future__ import annotations

import functools

import requests
import yt_dlp
from yt_dlp.networking.common import RequestHandler
from yt_dlp.networking.exceptions import HTTPError, NoSupportingHandlers, RequestError, TransportError
from yt_dlp.networking._helper import add_accept_encoding_header
from yt_dlp.networking._requests import SUPPORTED_ENCODINGS, RequestsResponseAdapter

from haic_resources.video.fetch_policy import FetchPolicy, open_checked
from haic_resources.video.item_error import ItemError


class OversizeError(ItemError):
    """A response streamed more than the byte limit."""


class GuardedYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose only request handler applies `policy` and the byte limit to every request."""

    def __init__(self, params: dict, policy: FetchPolicy, source: str, max_bytes: int):
        self._guard = (policy, source, max_bytes)
        super().__init__({**params, "proxy": ""})

    def urlopen(self, req):
        try:
            return super().urlopen(req)
        except NoSupportingHandlers as exc:  # yt-dlp's director wraps a refusal of ours: unwrap it
            refusal = next((e for e in exc.unexpected_errors if isinstance(e, ItemError)), None)
            if refusal is not None:
                raise refusal from None
            raise

    def build_request_director(self, handlers, preferences=None):
        policy, source, max_bytes = self._guard
        return super().build_request_director(
            [functools.partial(PolicyRH, policy=policy, source=source, max_bytes=max_bytes)])


class PolicyRH(RequestHandler):
    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = ()  # a proxy would resolve names itself: none is used
    _SUPPORTED_FEATURES = ()

    def __init__(self, *, policy: FetchPolicy, source: str, max_bytes: int, **kwargs):
        super().__init__(**kwargs)
        self._policy, self._source, self._max_bytes = policy, source, max_bytes

    def _check_extensions(self, extensions):
        super()._check_extensions(extensions)
        for known in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
            extensions.pop(known, None)

    def _prepare_headers(self, request, headers):
        add_accept_encoding_header(headers, SUPPORTED_ENCODINGS)  # only what urllib3 can decode here

    def _send(self, request):
        session = requests.Session()
        session.trust_env, session.verify = False, self.verify
        session.cookies = self._get_cookiejar(request)  # yt-dlp's jar: sent, and set by responses
        try:
            resp = open_checked(session, request.url, self._policy, self._source, method=request.method,
                                check_type=False, headers=self._get_headers(request), data=request.data,
                                timeout=self._calculate_timeout(request))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(cause=exc) from exc
        except requests.RequestException as exc:
            raise RequestError(cause=exc) from exc
        response = _CappedResponse(resp, self._max_bytes, self._source)
        if not 200 <= response.status < 300:
            raise HTTPError(response)
        return response


class _CappedResponse(RequestsResponseAdapter):
    def __init__(self, resp, max_bytes: int, source: str):
        super().__init__(resp)
        self._left, self._max_bytes, self._source = max_bytes, max_bytes, source

    def read(self, amt: int | None = None):
        if amt is None:  # never the whole body at once: the cap applies chunk by chunk
            return b"".join(iter(functools.partial(self.read, 1 << 20), b""))
        data = super().read(min(amt, self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            self.close()
            raise OversizeError(f"file exceeds the {self._max_bytes} byte limit: {self._source}")
        return data
