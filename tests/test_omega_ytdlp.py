"""Issue 12 item 14: Omega rows (a YouTube id with a start/end window) are fetched through yt-dlp's
Python API, and the scene split keeps to the row's window; both are in the ledger. yt-dlp's generic
extractor reads a direct .mp4 URL from a server on 127.0.0.1 (the source's uri_template points the
adapter there); no traffic goes to YouTube or anywhere else."""

from __future__ import annotations

import functools
import http.server
import io
import json
import multiprocessing.forkserver
import os
import re
import shutil
import threading
from pathlib import Path

import av
import pandas as pd
import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import FetchError, fetch_media
from haic_resources.video.ytdlp_fetch import ffmpeg_location
from tests.helpers import dagster_instance, ledger, run_partition, without_llm

UPTO_CLIPS = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos", "clips")]


class _Logged(http.server.SimpleHTTPRequestHandler):
    """Serves files, with byte ranges as FFmpeg asks for them (a section download seeks)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        self.server.requests.append((self.command, self.path))
        self.server.ranges.append(self.headers.get("Range"))
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if wanted is None or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first, last = int(wanted[1]), min(int(wanted[2] or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        return io.BytesIO(data[first:last + 1])


@pytest.fixture()
def pages(tmp_path, video):
    root = tmp_path / "served"
    root.mkdir()
    shutil.copyfile(video("sam2_juggle_1p.mp4"), root / "clip01.mp4")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Logged, directory=str(root)))
    server.requests, server.ranges = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("ffmpeg", ["section", "whole"])
def test_an_omega_row_is_fetched_by_ytdlp_and_split_within_its_window(tmp_path, monkeypatch, pages, ffmpeg,
                                                                     request):
    if ffmpeg == "whole":  # no FFmpeg anywhere: the whole video comes and the split keeps to the window
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
        monkeypatch.setenv("PATH", os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                                                   if not os.path.exists(os.path.join(d, "ffmpeg"))))
        # The fetch runs in a child of the forkserver, which keeps the environment it started with:
        # restart it now with this one, and again after the test with the usual one.
        multiprocessing.forkserver._forkserver._stop()
        request.addfinalizer(multiprocessing.forkserver._forkserver._stop)
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_FETCH_OPEN_NETWORKS", "127.0.0.1/32")
    without_llm(monkeypatch)
    host, port = pages.server_address
    folder = home / "landing" / "omega"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text(f'kind: omega\nuri_template: "http://{host}:{port}/{{id}}.mp4"\n')
    pd.DataFrame({"youtube_id": ["clip01"], "description": ["A young man juggles a football with his feet"],
                  "start_time": [2.0], "end_time": [9.5]}).to_parquet(folder / "part-000.parquet")
    partition = "omega__part-000.parquet"
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition, selection=UPTO_CLIPS).success

    raw = pd.read_parquet(home / "tables" / "raw_metadata" / f"{partition}.parquet")
    assert raw["uri"].tolist() == [f"ytdlp+http://{host}:{port}/clip01.mp4#t=2,9.5"]
    assert {path for _, path in pages.requests} == {"/clip01.mp4"}  # yt-dlp asked our server, nothing else
    book = ledger(home)
    video_row = book[book["stage"] == "videos"].iloc[0]
    sectioned = ffmpeg_location() is not None  # yt-dlp downloads only the section when it can
    assert sectioned == (ffmpeg == "section")
    assert (video_row.item_id, video_row.verdict) == ("omega:clip01", "kept")
    detail = json.loads(video_row.detail)
    assert (detail["window_s"], detail["section_downloaded"]) == ([2.0, 9.5], [2.0, 9.5] if sectioned else None)
    videos = pd.read_parquet(home / "tables" / "videos" / f"{partition}.parquet")
    assert videos[["source_uri", "window_start_s", "window_end_s"]].values.tolist() == [
        [f"ytdlp+http://{host}:{port}/clip01.mp4#t=2,9.5", None if sectioned else 2.0, None if sectioned else 9.5]]
    clips = book[book["stage"] == "clips"]
    if not sectioned:  # the whole 10.29 s video came; its one scene is cut to the row's window
        assert [(r.verdict, r.reason, r.value) for r in clips.itertuples()] == [
            ("kept", "scene 7.50 s within [5.0, 20.0] s", 7.5)]
        assert json.loads(clips.iloc[0].detail)["window_s"] == [2.0, 9.5]
        table = pd.read_parquet(home / "tables" / "clips" / f"{partition}.parquet")
        assert table[["start_s", "end_s", "start_frame", "end_frame"]].values.tolist() == [[2.0, 9.5, 48, 228]]


def test_only_the_rows_window_is_downloaded_and_ffmpeg_reads_through_the_policy(tmp_path, pages):
    """imageio-ffmpeg's static FFmpeg (test extra) cuts the section; it reads from the relay, which
    asks our server with byte ranges, never the whole 10.29 s file in one response."""
    assert ffmpeg_location() is not None
    host, port = pages.server_address
    got = fetch_media(f"ytdlp+http://{host}:{port}/clip01.mp4#t=2,9.5", tmp_path / "store",
                      policy=FetchPolicy(open_networks=("127.0.0.1/32",)))
    assert got.section == (2.0, 9.5)
    with av.open(str(got.local_path)) as container:
        duration = float(container.duration / av.time_base)
    assert 7.0 <= duration <= 8.5, duration  # FFmpeg cuts at key frames around the window
    assert {path for _, path in pages.requests} == {"/clip01.mp4"}
    assert pages.ranges[0] is None and len(pages.ranges) >= 2  # extraction, then FFmpeg's ranged reads
    assert all(r is not None and r.startswith("bytes=") for r in pages.ranges[1:]), pages.ranges


def test_an_omega_page_on_a_private_address_is_refused_by_default(tmp_path, pages):
    host, port = pages.server_address
    with pytest.raises(FetchError) as caught:
        fetch_media(f"ytdlp+http://{host}:{port}/clip01.mp4#t=2,9.5", tmp_path / "store")
    assert caught.value.reason == (f"fetch policy: host 127.0.0.1 resolves to loopback address 127.0.0.1, denied: "
                                   f"ytdlp+http://{host}:{port}/clip01.mp4#t=2,9.5")
    assert pages.requests == []


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers a path from `server.script[path]`: a list of (status, headers, body), one per request
    (the last repeats; a body given as a number is that many bytes streamed, and `server.sent` gets
    how many went out before the client hung up); records (host, method, path) of every request."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.server.requests.append((self.server.server_address[0], self.command, self.path))
        self.server.cookies.append(self.headers.get("Cookie"))
        answers = self.server.script.get(self.path) or [(404, {"Content-Length": "0"}, b"")]
        status, headers, body = answers.pop(0) if len(answers) > 1 else answers[0]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET" and isinstance(body, int):  # an endless-looking stream of `body` bytes
            sent = 0
            try:
                while sent < body:
                    self.wfile.write(b"\x00" * 65536)
                    sent += 65536
            except OSError:
                pass
            self.server.sent.append(sent)
        elif self.command == "GET":
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815


@pytest.fixture()
def scripted():
    servers, log, sent, cookies = [], [], [], []

    def start(script: dict, host: str = "127.0.0.1"):
        server = http.server.ThreadingHTTPServer((host, 0), _Scripted)
        server.script, server.requests, server.sent, server.cookies = script, log, sent, cookies
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://{host}:{server.server_address[1]}"

    start.cookies = cookies
    yield start, log, sent
    for server in servers:
        server.shutdown()
        server.server_close()


OPEN_LOOPBACK_1 = FetchPolicy(open_networks=("127.0.0.1/32",))  # 127.0.0.2 stays internal


def _video(data: bytes) -> tuple:
    return 200, {"Content-Type": "video/mp4", "Content-Length": str(len(data))}, data


@pytest.mark.parametrize("when", ["extraction", "download"])
def test_a_redirect_inside_ytdlp_to_an_internal_address_is_refused(tmp_path, scripted, video, when):
    """yt-dlp asks the page while extracting and again while downloading; the attacker's server
    answers well first and redirects inside on the later request. Neither hop reaches 127.0.0.2."""
    start, log, _ = scripted
    inner = start({"/secret.mp4": [_video(b"internal secret")]}, host="127.0.0.2")
    hop = (302, {"Location": f"{inner}/secret.mp4", "Content-Length": "0"}, b"")
    good = _video(video("sam2_juggle_1p.mp4").read_bytes())
    outer = start({"/clip01.mp4": [hop] if when == "extraction" else [good, hop]})
    uri = f"ytdlp+{outer}/clip01.mp4#t=2,9.5"
    with pytest.raises(FetchError) as caught:
        fetch_media(uri, tmp_path / "store", policy=OPEN_LOOPBACK_1)
    assert caught.value.reason == f"fetch policy: host 127.0.0.2 resolves to loopback address 127.0.0.2, denied: {uri}"
    assert log == [("127.0.0.1", "GET", "/clip01.mp4")] * (1 if when == "extraction" else 2)  # never 127.0.0.2
    assert not (tmp_path / "store" / "videos").exists() or list((tmp_path / "store" / "videos").iterdir()) == []


def test_a_file_that_lies_about_its_type_is_removed_and_recorded(tmp_path, scripted):
    start, _, _ = scripted
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000
    base = start({"/clip01.mp4": [(200, {"Content-Type": "video/mp4", "Content-Length": str(len(png))}, png)]})
    uri = f"ytdlp+{base}/clip01.mp4"
    with pytest.raises(FetchError) as caught:
        fetch_media(uri, tmp_path / "store", policy=OPEN_LOOPBACK_1)
    assert caught.value.reason == f"fetch policy: the file is not a video (it looks like a PNG image): {uri}"
    assert list((tmp_path / "store" / "videos").iterdir()) == []  # nothing left: no file, no part, no workdir


def test_a_body_longer_than_the_limit_is_cut_off_inside_ytdlp(tmp_path, scripted):
    """No Content-Length (the body ends when the connection closes): yt-dlp's max_filesize cannot see it;
    the transport stops reading at the limit instead of taking 64 MiB and judging afterwards."""
    start, _, sent = scripted
    base = start({"/clip01.mp4": [(200, {"Content-Type": "video/mp4"}, 64 << 20)]})
    uri = f"ytdlp+{base}/clip01.mp4"
    with pytest.raises(FetchError) as caught:
        fetch_media(uri, tmp_path / "store", policy=OPEN_LOOPBACK_1, max_bytes=100_000)
    assert caught.value.reason == f"file exceeds the 100000 byte limit: {uri}"
    assert list((tmp_path / "store" / "videos").iterdir()) == []
    assert sent and max(sent) < 16 << 20  # the connection was dropped long before the end


def test_cookies_a_page_sets_are_sent_on_yt_dlps_later_requests(tmp_path, scripted, video):
    """Sites such as YouTube set a cookie on the page and expect it back: our handler keeps yt-dlp's jar."""
    start, log, _ = scripted
    data = video("sam2_juggle_1p.mp4").read_bytes()
    first = (200, {"Content-Type": "video/mp4", "Content-Length": str(len(data)), "Set-Cookie": "visitor=abc; Path=/"},
             data)
    base = start({"/clip01.mp4": [first, _video(data)]})
    got = fetch_media(f"ytdlp+{base}/clip01.mp4", tmp_path / "store", policy=OPEN_LOOPBACK_1)
    assert got.size_bytes == len(data) and len(log) == 2
    assert start.cookies == [None, "visitor=abc"]
