"""Make a video available to the pipeline by its URI, once.

Sources: a local path or ``file://`` URI (only inside allowed roots), ``s3://bucket/key`` (the
project's one S3 client set-up, `S3Settings`) and ``http(s)://`` (streamed, size-capped, retried
with backoff, resumed with ``Range`` after a dropped connection). Errors are `FetchError` with a
secret-free reason.

Local and mounted sources are read **in place**: never copied, never modified; their size and
sha256 are recorded (``<media_root>/sources/``, re-hashed only when size or mtime change). Remote
sources are staged in a local cache (``<media_root>/videos/``, `media_cache`) bounded in bytes,
under a deterministic name (sha256 of the URI + the original extension) with a JSON sidecar of
size and sha256, so a video still staged is never fetched again.

Several rows (or partitions, or runs) may fetch one URI at once: each download goes to a
temporary file of its own, is checked (size against what the source announced, then hashed) and
only then renamed into place, so no one ever records a file another writer is still filling.
Staged media is not world-readable (MEDIA_FILE_MODE).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from haic_core.accumulation.page_uris import SCHEME_PREFIX, is_ytdlp_uri, ytdlp_target
from haic_resources.storage.files import TEMP_PREFIX, atomic_write_bytes, sha256_bytes, sha256_file
from haic_resources.storage.s3 import S3Settings
from haic_resources.video import media_cache
from haic_resources.video.fetch_policy import FetchPolicy, PolicyError, check_video_file, open_checked
from haic_resources.video.item_error import ItemError
from haic_resources.video.ytdlp_fetch import YtdlpError, download_with_ytdlp

DEFAULT_MAX_BYTES = 4 * 1024**3  # refuse anything larger than 4 GiB
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 4  # attempts after the first
DEFAULT_BACKOFF_S = 0.5  # doubled after every failed attempt
_HTTP_CHUNK = 64 * 1024
_SIDECAR_BYTES = 512  # room kept for a staged video's sidecar
MEDIA_FILE_MODE = 0o640  # owner and group: media from the web may be private, never world-readable


class FetchError(ItemError):
    """The media could not be fetched; `reason` is one line without credentials."""


@dataclass(frozen=True)
class FetchedMedia:
    local_path: Path
    size_bytes: int
    sha256: str
    source_uri: str  # redacted: no credentials, no query string
    fetched: bool  # True when it was downloaded now
    in_place: bool = False  # a local source read where it is (never copied)
    section: tuple[float, float] | None = None  # the window of the source the file holds (None: all of it)


def redact_uri(uri: str) -> str:
    """The URI without user:password and without the query string (signed URLs carry keys)."""
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:  # plain path (or a Windows drive letter)
        return uri
    if is_ytdlp_uri(uri):  # a page, not a signed media url: its query names the video
        page, window = ytdlp_target(uri)
        query = f"?{urlsplit(page).query}" if urlsplit(page).query else ""
        return SCHEME_PREFIX + redact_uri(page) + query + (f"#t={window[0]:g},{window[1]:g}" if window else "")
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def store_path_for(uri: str, media_root: str | os.PathLike) -> Path:
    """Deterministic place of `uri` in the media store: videos/<sha256(uri)><ext>."""
    suffix = PurePosixPath(unquote(urlsplit(uri).path or uri)).suffix.lower()
    if not suffix or len(suffix) > 8 or not suffix[1:].isalnum():
        suffix = ""
    return Path(media_root) / "videos" / f"{sha256_bytes(uri.encode('utf-8'))}{suffix}"


def fetch_media(
    uri: str,
    media_root: str | os.PathLike,
    *,
    allowed_roots: list[str | os.PathLike] | tuple = (),
    s3: S3Settings | None = None,
    policy: FetchPolicy = FetchPolicy(),
    cache_max_bytes: int | None = None,
    http_session: Any = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> FetchedMedia:
    """Make the media at `uri` available and describe it: a local source where it is, a remote one
    staged under `media_root` (evicting the least recently used to stay within `cache_max_bytes`).

    A staged copy whose size and sha256 match its sidecar is returned with ``fetched=False``
    and without touching the source. `s3` is the S3 client set-up for ``s3://`` URIs (None: the
    default endpoint and region); settings rather than a client, so that a child process can
    call this. `policy` says which hosts, addresses, body types and buckets remote uris may use
    (the default denies private and loopback addresses and every bucket). Raises `FetchError`.
    """
    if not uri or not isinstance(uri, str):
        raise FetchError("empty uri")
    source = redact_uri(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:
        return _in_place(uri, _local_path(uri), media_root, allowed_roots, max_bytes)
    refusal = policy_refusal(uri, policy)
    if refusal is not None:  # a copy staged before the rule changed is not used either
        raise FetchError(refusal)
    dest = store_path_for(uri, media_root)
    cached = _cached(dest, source)
    if cached is not None:
        media_cache.touch(dest)
        return cached
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f"{TEMP_PREFIX}{dest.name}.", suffix=".part")
    os.close(fd)
    part = Path(tmp_name)
    section = None
    try:
        if is_ytdlp_uri(uri):
            page, window = ytdlp_target(uri)
            section = download_with_ytdlp(page, part, window, max_bytes, policy, source, read_timeout_s, retries)
            expected = None
        elif scheme == "s3":
            policy.check_s3(urlsplit(uri).netloc, source)
            expected = _download_s3(uri, part, s3 or S3Settings(), max_bytes)
        elif scheme in ("http", "https"):
            expected = _download_http(uri, part, http_session, policy, max_bytes,
                                      (connect_timeout_s, read_timeout_s), retries, backoff_s)
        else:
            raise FetchError(f"unsupported uri scheme {scheme!r} in {source}")
        size = part.stat().st_size
        if size == 0:
            raise FetchError(f"empty file (0 bytes) at {source}")
        if expected is not None and size != expected:
            raise FetchError(f"incomplete download: {size} of {expected} bytes from {source}")
        if cache_max_bytes is not None and size > cache_max_bytes:
            raise FetchError(f"file of {size} bytes is larger than the media cache ({cache_max_bytes} bytes): "
                             f"{source}")
        check_video_file(part, source)  # the bytes, not the name or the Content-Type, say what it is
        sha = sha256_file(part)
        os.chmod(part, MEDIA_FILE_MODE)
        media_cache.make_room(media_root, size + _SIDECAR_BYTES, cache_max_bytes, keep=dest)
        os.replace(part, dest)
    except (PolicyError, YtdlpError) as exc:
        raise FetchError(exc.reason)
    finally:
        part.unlink(missing_ok=True)
    _write_sidecar(dest, {"source_uri": source, "size_bytes": size, "sha256": sha,
                          "section": list(section) if section else None})
    return FetchedMedia(dest, size, sha, source, fetched=True, section=section)


def policy_refusal(uri: str, policy: FetchPolicy) -> str | None:
    """Why the fetch policy refuses a remote `uri` now (None: it allows it), from its rules on names:
    scheme, allowed and denied hosts (a yt-dlp page's host), allowed buckets. Checked on every use of
    the source, a staged copy's too: deny-listing a host or bucket stops its videos at once. The
    address rules (private and loopback networks) are checked when a connection is made: a staged
    copy makes none."""
    source = redact_uri(uri)
    scheme = urlsplit(uri).scheme.lower()
    try:
        if is_ytdlp_uri(uri):
            policy.check_host(ytdlp_target(uri)[0], source)
        elif scheme == "s3":
            policy.check_s3(urlsplit(uri).netloc, source)
        elif scheme in ("http", "https"):
            policy.check_host(uri, source)
    except PolicyError as exc:
        return exc.reason
    return None


def forget_media(uri: str, media_root: str | os.PathLike) -> None:
    """Remove the staged copy of `uri` and its sidecar (a file that failed the probe is no video
    of ours and must not stay in the media store). A source read in place is never touched."""
    media_cache.release(store_path_for(uri, media_root))
    _source_record(uri, media_root).unlink(missing_ok=True)


# -------------------------------------------------------------------------------- cache


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".json")


def _write_sidecar(dest: Path, record: dict) -> None:
    atomic_write_bytes(_sidecar(dest), json.dumps(record, sort_keys=True).encode("utf-8"), mode=MEDIA_FILE_MODE)


def _cached(dest: Path, source: str) -> FetchedMedia | None:
    try:
        record = json.loads(_sidecar(dest).read_text())
        size = dest.stat().st_size
    except (OSError, ValueError):
        return None
    if size != record.get("size_bytes") or sha256_file(dest) != record.get("sha256"):
        return None  # damaged or replaced: fetch again
    section = tuple(record["section"]) if record.get("section") else None
    return FetchedMedia(dest, size, record["sha256"], source, fetched=False, section=section)


# -------------------------------------------------------------------------------- local


def _local_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"file uri with a remote host is not supported: {redact_uri(uri)}")
        return Path(unquote(parts.path))
    return Path(uri)


def _in_place(uri: str, path: Path, media_root, allowed_roots, max_bytes: int) -> FetchedMedia:
    """A local source, checked and described where it is; its hash is recorded beside the media store and
    computed again only when the file's size or mtime change."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise FetchError(f"local file not found: {path}")
    roots = [Path(r).resolve() for r in allowed_roots]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise FetchError(f"local path {path} is outside the allowed roots")
    if not resolved.is_file():
        raise FetchError(f"not a regular file: {path}")
    stat = resolved.stat()
    if stat.st_size > max_bytes:
        raise FetchError(f"file is larger than the {max_bytes} byte limit: {path}")
    if stat.st_size == 0:
        raise FetchError(f"empty file (0 bytes) at {path}")
    record_path = _source_record(uri, media_root)
    seen = {"path": str(resolved), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    if {k: record.get(k) for k in seen} != seen or not record.get("sha256"):
        try:
            record = {**seen, "sha256": sha256_file(resolved)}
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror}")
        atomic_write_bytes(record_path, json.dumps(record, sort_keys=True).encode("utf-8"), mode=MEDIA_FILE_MODE)
    return FetchedMedia(resolved, stat.st_size, record["sha256"], redact_uri(uri), fetched=False, in_place=True)


def _source_record(uri: str, media_root) -> Path:
    return Path(media_root) / "sources" / f"{sha256_bytes(uri.encode('utf-8'))}.json"


# -------------------------------------------------------------------------------- s3


def _download_s3(uri: str, part: Path, s3: S3Settings, max_bytes: int) -> int:
    """Download into `part`; returns the object's size from its head."""
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    source = redact_uri(uri)
    if not bucket or not key:
        raise FetchError(f"s3 uri needs a bucket and a key: {source}")
    try:
        import botocore.exceptions as bexc

        client = s3.client()
    except ImportError:
        raise FetchError("boto3 is not installed")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        size = int(head.get("ContentLength", 0))
        if size > max_bytes:
            raise FetchError(f"object is larger than the {max_bytes} byte limit: {source}")
        client.download_file(bucket, key, str(part))
        return size
    except FetchError:
        raise
    except bexc.NoCredentialsError:
        raise FetchError(f"no AWS credentials available to read {source}")
    except bexc.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise FetchError(f"s3 object not found: {source}")
        if code in ("403", "AccessDenied"):
            raise FetchError(f"access denied to {source}")
        raise FetchError(f"s3 error {code} for {source}")
    except bexc.BotoCoreError as exc:
        raise FetchError(f"s3 transfer failed for {source}: {type(exc).__name__}")


# -------------------------------------------------------------------------------- http


def _download_http(uri: str, part: Path, session, policy: FetchPolicy, max_bytes: int,
                   timeout: tuple[float, float], retries: int, backoff_s: float) -> int | None:
    """Stream to `part`; after a dropped connection resume with Range from what arrived.
    Returns the total size the server announced (None when it announced none)."""
    import requests

    source = redact_uri(uri)
    session = session or requests.Session()
    part.write_bytes(b"")
    last_problem = "no attempt made"
    total = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * (2 ** (attempt - 1)))
        have = part.stat().st_size
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with open_checked(session, uri, policy, source, timeout=timeout, headers=headers) as resp:
                if resp.status_code == 416 and have:  # nothing left to send: we have it all
                    return total
                if resp.status_code >= 400:
                    last_problem = f"HTTP {resp.status_code}"
                    if resp.status_code in (408, 429) or resp.status_code >= 500:
                        continue  # worth retrying
                    raise FetchError(f"HTTP {resp.status_code} for {source}")
                resumed = have and resp.status_code == 206 and _range_start(resp) == have
                if not resumed:
                    have = 0  # server ignored Range: start over
                expected = _expected_total(resp, have)
                total = expected if expected is not None else total
                if expected is not None and expected > max_bytes:
                    raise FetchError(f"file is larger than the {max_bytes} byte limit "
                                     f"({expected} bytes): {source}")
                with open(part, "ab" if resumed else "wb") as fh:
                    written = have
                    # Small chunks: bytes of a chunk cut short by a dropped connection are lost.
                    for chunk in resp.iter_content(_HTTP_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise FetchError(f"file exceeds the {max_bytes} byte limit: {source}")
                        fh.write(chunk)
                if expected is not None and written < expected:
                    last_problem = f"connection closed after {written} of {expected} bytes"
                    continue
                return expected
        except FetchError:
            raise
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            last_problem = type(exc).__name__
        except requests.RequestException as exc:
            raise FetchError(f"request failed for {source}: {type(exc).__name__}")
    raise FetchError(f"download failed after {retries + 1} attempts for {source}: {last_problem}")


def _range_start(resp) -> int | None:
    # "Content-Range: bytes 100-199/200"
    value = resp.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _expected_total(resp, have: int) -> int | None:
    value = resp.headers.get("Content-Range", "")
    if "/" in value and not value.endswith("/*"):
        try:
            return int(value.rsplit("/", 1)[1])
        except ValueError:
            pass
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return have + int(length) if resp.status_code == 206 else int(length)
    return None
