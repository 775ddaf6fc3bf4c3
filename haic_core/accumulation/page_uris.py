"""Uris of videos that sit behind a web page (Omega-multimodal's YouTube ids): ``ytdlp+https://…``
says the page is read by yt-dlp, and a W3C media fragment (``#t=12,27.5``) carries the row's window.

Pure: strings in, strings out. The fetch is haic_resources/video/ytdlp_fetch.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SCHEME_PREFIX = "ytdlp+"
_FRAGMENT = re.compile(r"t=(?P<start>\d+(?:\.\d+)?),(?P<end>\d+(?:\.\d+)?)")


def ytdlp_uri(page_url: str, start_s: float | None, end_s: float | None) -> str:
    """The uri of a row whose video sits behind `page_url`, with its window when it has one."""
    window = f"#t={start_s:g},{end_s:g}" if start_s is not None and end_s is not None else ""
    return f"{SCHEME_PREFIX}{page_url}{window}"


def is_ytdlp_uri(uri: str) -> bool:
    return uri.startswith(SCHEME_PREFIX + "http://") or uri.startswith(SCHEME_PREFIX + "https://")


def ytdlp_target(uri: str) -> tuple[str, tuple[float, float] | None]:
    """(page url, window in seconds or None) of a ``ytdlp+`` uri."""
    parts = urlsplit(uri.removeprefix(SCHEME_PREFIX))
    match = _FRAGMENT.fullmatch(parts.fragment or "")
    window = (float(match["start"]), float(match["end"])) if match else None
    return urlunsplit(parts._replace(fragment="")), window
