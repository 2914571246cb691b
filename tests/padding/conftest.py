"""Fixtures for /pad: an object-store-like loopback origin (GET tracks, PUT uploads) and the service."""

from __future__ import annotations

import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support import AUDIO, KEYS, ORIGIN_HOST, Service


class Store:
    """What the origin saw: uploaded objects, and downloads the client abandoned."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.events: list[str] = []
        self.lock = threading.Lock()

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


class _Bucket(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/audio/"):
            f = AUDIO / path.removeprefix("/audio/")
            if not f.is_file():
                return self._send(404, b"NoSuchKey")
            return self._send(200, f.read_bytes(), {"Content-Type": "audio/wav"})
        if path.startswith("/drip/"):  # a track served slowly over ``s`` seconds
            data = (AUDIO / path.removeprefix("/drip/")).read_bytes()
            seconds = float(query.get("s", ["8"])[0])
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            steps = 40
            try:
                for i in range(steps):
                    self.wfile.write(data[i * len(data) // steps : (i + 1) * len(data) // steps])
                    self.wfile.flush()
                    time.sleep(seconds / steps)
                self.store.note(f"drip-complete {path}")
            except (BrokenPipeError, ConnectionResetError):
                self.store.note(f"drip-aborted {path}")
            return
        if path == "/text":
            return self._send(200, b"this is not audio at all " * 100, {"Content-Type": "text/plain"})
        return self._send(404, b"NoSuchKey")

    def do_PUT(self):  # noqa: N802
        path = urlsplit(self.path).path
        if path.startswith("/status/"):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            return self._send(int(path.rsplit("/", 1)[1]), b"<Error>AccessDenied</Error>")
        length = self.headers.get("Content-Length")
        if length is None:  # like S3: a presigned PUT needs Content-Length, no chunked bodies
            return self._send(411, b"MissingContentLength")
        if path.startswith("/slowput/"):  # a slow store: answers 6 s after the body arrived
            self.store.note(f"put-started {path}")
            self.rfile.read(int(length))
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                ready, _, _ = select.select([self.connection], [], [], 0.1)
                if ready and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    self.store.note(f"put-abandoned {path}")  # the uploader hung up before the answer
                    return
            self.store.note(f"put-complete {path}")
            return self._send(200)
        body = self.rfile.read(int(length))
        with self.store.lock:
            self.store.objects[path] = body
            self.store.content_types[path] = self.headers.get("Content-Type", "")
        return self._send(200, headers={"ETag": '"etag"'})


@pytest.fixture(scope="session")
def bucket():
    """(base URL, Store) of a loopback object store on 127.0.0.2."""
    store = Store()
    handler = type("Bucket", (_Bucket,), {"store": store})
    server = ThreadingHTTPServer((ORIGIN_HOST, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{ORIGIN_HOST}:{server.server_address[1]}", store
    server.shutdown()


@pytest.fixture(scope="module")
def padding(tmp_path_factory):
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "padding",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
            "REFLECTOR_GPU_PADDING_CANCEL_CHECK_INTERVAL_S": "0.3",
        },
        tmp_path_factory.mktemp("padding"),
        "padding",
    )
    with svc.running("padding"):
        yield svc


@pytest.fixture
def pad_api(padding):
    with httpx.Client(base_url=padding.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=120) as c:
        yield c
