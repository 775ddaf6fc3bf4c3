"""Videos behind a web page (Omega-multimodal's YouTube ids) fetched through yt-dlp's Python API.

A row's uri says so with the scheme ``ytdlp+https://…`` and carries its window as a W3C media
fragment (``#t=12,27.5``; haic_core/accumulation/page_uris.py). When FFmpeg is there (on the PATH, or
imageio-ffmpeg's static build from the `ffmpeg` extra) only that section is downloaded (yt-dlp's
``download_ranges``, FFmpeg reading through ffmpeg_relay.py); otherwise the whole video is, and
the scene split is restricted to the window instead. Either way the caller learns which section the file holds.

The page is checked by the fetch policy before yt-dlp asks for it, and so is every media URL
yt-dlp extracts from it before a byte is downloaded; every request yt-dlp itself sends (redirects
included) goes through the policy and the byte limit (ytdlp_transport.py); the file it leaves must
be a video by its own bytes (checked by media_fetch for every remote source).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from haic_resources.storage.files import TEMP_PREFIX
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.item_error import ItemError


class YtdlpError(ItemError):
    """yt-dlp could not fetch the video; `reason` is one line."""


def download_with_ytdlp(page_url: str, part: Path, window: tuple[float, float] | None, max_bytes: int,
                        policy: FetchPolicy, source: str, socket_timeout_s: float,
                        retries: int) -> tuple[float, float] | None:
    """Download the video of `page_url` into `part`. Returns the section the file holds (None: the whole video)."""
    from yt_dlp.utils import DownloadError

    from haic_resources.video.ytdlp_transport import GuardedYoutubeDL, OversizeError

    policy.check_url(page_url, source)
    ffmpeg = ffmpeg_location() if window is not None else None
    workdir = Path(tempfile.mkdtemp(dir=part.parent, prefix=f"{TEMP_PREFIX}ytdlp-"))
    options = {"outtmpl": str(workdir / "video.%(ext)s"), "format": "best[ext=mp4]/best", "noplaylist": True,
               "max_filesize": max_bytes, "socket_timeout": socket_timeout_s, "retries": retries,
               "quiet": True, "no_warnings": True, "noprogress": True, "logger": _Quiet(),
               "cachedir": False, "color": "never"}
    relay = None
    try:
        with ExitStack() as stack:
            if ffmpeg is not None:
                relay = stack.enter_context(_sectioned(options, window, ffmpeg, policy, source, max_bytes,
                                                       socket_timeout_s))
            ydl = stack.enter_context(GuardedYoutubeDL(options, policy, source, max_bytes))
            info = ydl.extract_info(page_url, download=False)
            for url in _media_urls(info):
                policy.check_url(url, source)
            announced = info.get("filesize") or info.get("filesize_approx")
            if announced and announced > max_bytes:
                raise YtdlpError(f"file is larger than the {max_bytes} byte limit ({announced} bytes): {source}")
            if relay is not None and not _through_relay(info, relay):
                relay, ydl.params["download_ranges"] = None, None  # not plain HTTP: whole, through our handler
            ydl.process_ie_result(info, download=True)
            if relay is not None and relay.refusal is not None:
                raise YtdlpError(relay.refusal.reason)
        files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if len(files) != 1:
            raise YtdlpError(f"yt-dlp left {len(files)} files for {source}")
        if files[0].stat().st_size > max_bytes:
            raise YtdlpError(f"file exceeds the {max_bytes} byte limit: {source}")
        os.replace(files[0], part)
    except DownloadError as exc:
        if relay is not None and relay.refusal is not None:
            raise YtdlpError(relay.refusal.reason)
        raise YtdlpError(f"yt-dlp: {_one_line(exc)}: {source}")
    except OversizeError as exc:
        raise YtdlpError(exc.reason)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return window if relay is not None else None


def ffmpeg_location() -> str | None:
    """The FFmpeg for section downloads: one on the PATH, else the static build of imageio-ffmpeg
    (the `ffmpeg` extra), else None (whole videos are downloaded)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        found = imageio_ffmpeg.get_ffmpeg_exe()  # IMAGEIO_FFMPEG_EXE, when set, is taken untested
    except (ImportError, RuntimeError):
        return None
    return found if os.access(found, os.X_OK) else None


@contextmanager
def _sectioned(options: dict, window, ffmpeg: str, policy, source, max_bytes, timeout) -> Iterator:
    """Options and context for downloading only `window` with `ffmpeg`: FFmpeg reads through a relay."""
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
    from yt_dlp.utils import download_range_func

    from haic_resources.video.ffmpeg_relay import PolicyRelay

    options.update(download_ranges=download_range_func(None, [window]), ffmpeg_location=ffmpeg)
    # yt-dlp asks whether FFmpeg is available without its options: tell it where, for this context.
    token = FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    try:
        with PolicyRelay(policy, source, max_bytes, timeout) as relay:
            yield relay
    finally:
        FFmpegPostProcessor._ffmpeg_location.reset(token)


def _through_relay(info: dict, relay) -> bool:
    """Point every format's URL at the relay; False (nothing changed) unless all are plain HTTP(S):
    FFmpeg would fetch an HLS or DASH manifest's segments itself."""
    formats = [info, *info.get("formats", []), *info.get("requested_formats", [])]
    if any(f.get("url") and f.get("protocol", "https") not in ("http", "https") for f in formats):
        return False
    for f in formats:
        if f.get("url"):
            f["url"] = relay.url_for(f["url"])
    return True


def _media_urls(info: dict) -> list[str]:
    formats = info.get("requested_formats") or [info]
    return [f["url"] for f in formats if f.get("url")]


def _one_line(exc: Exception) -> str:
    text = str(exc).replace("ERROR: ", "").strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class _Quiet:
    """yt-dlp's logger: nothing on the console (the ledger gets the error)."""

    def debug(self, msg):
        pass

    info = warning = debug

    def error(self, msg):
        pass
