"""Helpers shared by every test directory: the running local-mode service and a loopback origin.

Import from here (``from support import Service, KEYS``), not from ``conftest``: several
test directories have a conftest.py of their own and only this module name is unambiguous.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
AUDIO = SHARED / "audio"
KEYS = ("test-key-one", "test-key-two")
#: The loopback origin binds here; the service allowlists exactly this /32, so plain
#: 127.0.0.1 stays blocked by the default SSRF policy while this address is reachable.
ORIGIN_HOST = "127.0.0.2"


def shared_audio(name: str) -> Path:
    if not AUDIO.is_dir():
        pytest.skip(f"test audio not found: {AUDIO} is absent (it ships beside the repo as ../shared)")
    return AUDIO / name


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Origin(BaseHTTPRequestHandler):
    """A small origin server for URL-fetching tests: files, redirects, errors, slow and big bodies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
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
                return self._send(404, b"not found")
            return self._send(200, f.read_bytes(), {"Content-Type": "application/octet-stream"})
        if path == "/redirect":
            return self._send(302, headers={"Location": query["to"][0]})
        if path.startswith("/loop/"):
            n = int(path.rsplit("/", 1)[1])
            return self._send(302, headers={"Location": f"/loop/{n + 1}"})
        if path.startswith("/status/"):
            return self._send(int(path.rsplit("/", 1)[1]), b"origin error")
        if path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"RIFF")
            self.wfile.flush()
            time.sleep(6)
            return
        if path == "/big":
            size = int(query.get("mb", ["9"])[0]) * 1024 * 1024
            return self._send(200, b"\0" * size)
        return self._send(404, b"not found")


class Service:
    """A running ``rgpu_local`` process (set ``REFLECTOR_GPU_LOCAL_PREDICTORS`` in ``env`` to pick
    which predictors it loads; ``wait_ready(name)`` waits for one model), or, with ``kserve``, a
    predictor image's KServe entry point (``python -m rgpu_<predictor> --model_name ...``) started
    as the operator configures a pod (metrics on their own port)."""

    def __init__(self, env: dict[str, str], tmp: Path, name: str, kserve: tuple[str, ...] = ()):
        self.port = free_port()
        self.metrics_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.upload_dir = tmp / "uploads"
        self.log_path = tmp / f"{name}.log"
        full_env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "REFLECTOR_GPU_UPLOAD_DIR": str(self.upload_dir),
            "REFLECTOR_GPU_CACHE": str(REPO / ".cache"),
            "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
            **env,
        }
        for k in ("REFLECTOR_GPU_APIKEY", "REFLECTOR_GPU_APIKEY_FILE", "REFLECTOR_GPU_AUTH_DISABLED"):
            if k not in env:
                full_env.pop(k, None)
        command = ["-m", "rgpu_local"]
        if kserve:  # (module, KServe arguments...)
            command = ["-m", kserve[0], *kserve[1:], "--http_port", str(self.port), "--host", "127.0.0.1"]
            full_env.setdefault("REFLECTOR_GPU_METRICS_PORT", str(self.metrics_port))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *command], env=full_env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_listening(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                httpx.get(self.base + "/v2/health/live", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"service did not start in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def wait_ready(self, model: str, timeout: float = 300) -> None:
        """Wait until ``model`` answers ready (its weights loaded)."""
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.base}/v2/models/{model}/ready", timeout=5).status_code == 200:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"model {model} not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    @contextlib.contextmanager
    def running(self, model: str, timeout: float = 300) -> Iterator[Service]:
        """For a fixture: wait until ``model`` is ready, hand the service over, then stop it and
        require a clean exit (not checked when the body raised: that error is the one to see)."""
        try:
            self.wait_ready(model, timeout)
            yield self
        finally:
            code = self.stop()
        self.assert_clean_exit(code)

    def assert_clean_exit(self, code: int) -> None:
        """After ``stop()``: the process exited 0 and left nothing in its upload directory."""
        assert code == 0, f"service exited with {code} on SIGTERM:\n{self.log_path.read_text()[-3000:]}"
        leftovers = sorted(p.name for p in self.upload_dir.glob("*")) if self.upload_dir.exists() else []
        assert leftovers == [], f"temporary files left in the upload directory: {leftovers}"

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        finally:
            self.log.close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients hanging up on /slow is expected
        pass


def start_origin(host: str = ORIGIN_HOST) -> tuple[ThreadingHTTPServer, str]:
    """Start the loopback origin; returns the server and its base URL."""
    server = _QuietServer((host, 0), _Origin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"
