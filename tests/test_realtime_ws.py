"""``GET /v1/realtime`` through real WebSocket clients (``websockets`` and the OpenAI SDK's realtime
client) against the running service with real Whisper base and real speech: every server event is
checked against the installed OpenAI SDK's event models."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets
from pydantic import TypeAdapter

from support import KEYS, Service, shared_audio

AUTH = {"Authorization": f"Bearer {KEYS[0]}"}


def _server_event_adapter(beta: bool = False) -> TypeAdapter:
    if beta:
        from openai.types.beta.realtime import RealtimeServerEvent as BetaEvent

        return TypeAdapter(BetaEvent)
    from openai.types.realtime import RealtimeServerEvent

    return TypeAdapter(RealtimeServerEvent)


CURRENT = _server_event_adapter()
BETA = _server_event_adapter(beta=True)


def check_event(event: dict, beta: bool = False) -> None:
    """Strictly valid for the SDK's model of its type (extra fields, e.g. ``words``, allowed)."""
    assert event.get("event_id"), event
    if beta and event["type"].startswith("transcription_session."):
        # The beta models lag the beta protocol: no model for transcription_session.created (the
        # same shape as .updated), a required ephemeral client_secret (none exists here), and the
        # transcription model typed as a Literal of OpenAI's model names.
        session = {**event["session"], "client_secret": {"value": "", "expires_at": 0}}
        session["input_audio_transcription"] = {**session["input_audio_transcription"], "model": "whisper-1"}
        event = {**event, "type": "transcription_session.updated", "session": session}
    if event["type"].startswith("session.") and event["session"]["audio"]["input"]["format"]["rate"] == 16_000:
        # The SDK's AudioPCM types rate as Literal[24000]; 16 kHz is our documented extension.
        event = json.loads(json.dumps(event).replace('"rate": 16000', '"rate": 24000'))
    (BETA if beta else CURRENT).validate_python(event)


def pcm16(name: str, rate: int, seconds: float | None = None) -> bytes:
    """A shared recording as mono pcm16 at ``rate`` (PyAV's resampler, not ours)."""
    import av

    out = []
    with av.open(str(shared_audio(name))) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            for f in resampler.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            out.append(f.to_ndarray().reshape(-1))
    samples = np.concatenate(out).astype("<i2")
    if seconds is not None:
        samples = samples[: int(seconds * rate)]
    return samples.tobytes()


def ws_url(service: Service, query: str = "intent=transcription") -> str:
    return service.base.replace("http://", "ws://") + "/v1/realtime?" + query


async def recv(ws, timeout: float = 60.0, beta: bool = False) -> dict:
    event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    check_event(event, beta)
    return event


async def send_audio(ws, data: bytes, rate: int, frame_ms: int = 100, pace: float = 0.0) -> None:
    step = rate * 2 * frame_ms // 1000
    for i in range(0, len(data), step):
        await ws.send(
            json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(data[i : i + step]).decode()})
        )
        if pace:
            await asyncio.sleep(frame_ms / 1000 / pace)


async def collect_until_completed(ws, items: int, timeout: float = 120.0, beta: bool = False) -> list[dict]:
    events, done = [], 0
    deadline = time.monotonic() + timeout
    while done < items:
        event = await recv(ws, max(1.0, deadline - time.monotonic()), beta)
        events.append(event)
        assert event["type"] != "error", event
        done += event["type"].endswith(".completed") or event["type"].endswith(".failed")
    return events


def _log_tail(service: Service, start: int) -> str:
    return service.log_path.read_text()[start:]


def test_session_update_then_partial_text_then_completed_with_words(service):
    """Server VAD at 24 kHz, real speech paced at 2x: speech_started, deltas while speech goes on,
    then speech_stopped, committed and completed with word times from the session start."""
    audio = pcm16("test_mathieu_hello.wav", 24_000)

    async def run():
        async with websockets.connect(ws_url(service), additional_headers=AUTH, subprotocols=["realtime"]) as ws:
            assert ws.subprotocol == "realtime"
            created = await recv(ws)
            assert created["type"] == "session.created"
            assert created["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {
                                "input": {
                                    "format": {"type": "audio/pcm", "rate": 24000},
                                    "transcription": {"model": "whisper", "language": "en"},
                                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                                }
                            },
                        },
                    }
                )
            )
            updated = await recv(ws)
            assert updated["type"] == "session.updated"
            assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700
            sender = asyncio.create_task(send_audio(ws, audio + b"\0\0" * 24_000 * 2, 24_000, pace=2.0))
            events = []
            while True:
                event = await recv(ws, 120)
                events.append(event)
                assert event["type"] != "error", event
                if sender.done() and event["type"].endswith(".completed"):
                    pending = {e["item_id"] for e in events if e["type"] == "input_audio_buffer.committed"}
                    finished = {e["item_id"] for e in events if e["type"].endswith((".completed", ".failed"))}
                    if pending <= finished:
                        break
            await sender
            return events

    events = asyncio.run(run())
    types = [e["type"] for e in events]
    assert types[0] == "input_audio_buffer.speech_started"
    completed = [e for e in events if e["type"].endswith(".completed")]
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert deltas, "partial text arrives before the turn ends"
    first = completed[0]["item_id"]
    first_delta = next(i for i, e in enumerate(events) if e["type"].endswith(".delta"))
    stopped = next(i for i, e in enumerate(events) if e["type"] == "input_audio_buffer.speech_stopped")
    assert first_delta < stopped, "a delta came while the first turn's speech was still going on"
    commits = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    assert commits[0]["previous_item_id"] is None and commits[0]["item_id"] == first
    text = " ".join(c["transcript"] for c in completed)
    assert "everyone" in text.lower() and "reflector" in text.lower(), text
    for c in completed:
        # The deltas are the draft partial text: they start as the final transcript does, but are
        # not always a prefix of it (two drafts of audio cut mid-sentence can agree on a word the
        # full decode then fixes, e.g. "I want today I want" for "everyone. Today, I want";
        # .completed is the truth). Their quality is measured by bench/realtime_bench.py.
        joined = "".join(d["delta"] for d in deltas if d["item_id"] == c["item_id"]).split()
        if joined:
            first_word = c["transcript"].split()[0]
            assert re.sub(r"\W", "", joined[0].lower()) == re.sub(r"\W", "", first_word.lower()), joined
        assert c["usage"]["type"] == "duration" and c["usage"]["seconds"] > 0
    words = [w for c in completed for w in c["words"]]
    assert len(words) > 20
    assert all(0 <= w["start"] <= w["end"] <= 24 for w in words)
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:], strict=False))
    assert 0.0 < words[0]["start"] < 2.0


def test_bad_input_gets_error_events_and_the_session_goes_on(service):
    start = len(service.log_path.read_text())

    async def run():
        async with websockets.connect(ws_url(service), additional_headers=AUTH) as ws:
            await recv(ws)
            cases = [
                ("this is not json", "invalid_json"),
                (json.dumps({"type": "response.create"}), "unknown_event_type"),
                (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64%%%"}), "invalid_base64"),
                (
                    json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}),
                    "invalid_audio_length",
                ),
                (
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(b"\0" * (121 * 24_000 * 2)).decode(),
                        }
                    ),
                    "input_audio_buffer_full",
                ),
                (
                    json.dumps(
                        {
                            "type": "session.update",
                            "session": {
                                "type": "transcription",
                                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}},
                            },
                        }
                    ),
                    "unsupported_audio_format",
                ),
                (
                    json.dumps({"type": "input_audio_buffer.commit", "event_id": "evt_client_1"}),
                    "input_audio_buffer_commit_empty",
                ),
                (
                    json.dumps(
                        {
                            "type": "session.update",
                            "session": {
                                "type": "transcription",
                                "audio": {"input": {"transcription": {"language": "xx"}}},
                            },
                        }
                    ),
                    "invalid_value",
                ),
                (
                    json.dumps(
                        {
                            "type": "session.update",
                            "session": {"type": "transcription", "audio": {"input": {"transcription": {"prompt": 7}}}},
                        }
                    ),
                    "invalid_value",
                ),
            ]
            for message, code in cases:
                await ws.send(message)
                event = await recv(ws)
                assert event["type"] == "error" and event["error"]["code"] == code, (message[:80], event)
                assert event["error"]["message"]
            # Still alive: an update is answered, with nothing changed by the refused ones.
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
            updated = await recv(ws)
            assert updated["type"] == "session.updated"
            assert updated["session"]["audio"]["input"]["format"]["rate"] == 24000

    asyncio.run(run())
    time.sleep(0.5)
    log = _log_tail(service, start)
    assert "Traceback" not in log and '"level": "ERROR"' not in log, log[-3000:]


def test_commit_error_names_the_client_event(service):
    async def run():
        async with websockets.connect(ws_url(service), additional_headers=AUTH) as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "evt_42"}))
            return await recv(ws)

    event = asyncio.run(run())
    assert event["error"]["code"] == "input_audio_buffer_commit_empty" and event["error"]["event_id"] == "evt_42"


def test_manual_commits_at_16k_and_the_beta_dialect(service):
    """turn_detection null: the client commits. At 16 kHz (current dialect) and with the beta
    ``transcription_session.update`` (pcm16 at 24 kHz), each gets its own session event pair."""
    audio16 = pcm16("test_short.wav", 16_000)
    audio24 = pcm16("test_short.wav", 24_000)

    async def current():
        async with websockets.connect(ws_url(service, "model=whisper"), additional_headers=AUTH) as ws:
            assert (await recv(ws))["type"] == "session.created"
            update = {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}, "turn_detection": None}},
                },
            }
            await ws.send(json.dumps(update))
            updated = await recv(ws)
            assert updated["session"]["audio"]["input"]["turn_detection"] is None
            await send_audio(ws, audio16, 16_000, frame_ms=500)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return await collect_until_completed(ws, 1)

    async def beta():
        headers = {**AUTH, "OpenAI-Beta": "realtime=v1"}
        async with websockets.connect(ws_url(service), additional_headers=headers) as ws:
            assert (await recv(ws, beta=True))["type"] == "transcription_session.created"
            update = {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_format": "pcm16",
                    "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": None,
                },
            }
            await ws.send(json.dumps(update))
            updated = await recv(ws, beta=True)
            assert updated["type"] == "transcription_session.updated" and updated["session"]["turn_detection"] is None
            await send_audio(ws, audio24, 24_000, frame_ms=1000)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return await collect_until_completed(ws, 1, beta=True)

    for events in (asyncio.run(current()), asyncio.run(beta())):
        commit = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        completed = events[-1]
        assert completed["type"] == "conversation.item.input_audio_transcription.completed"
        assert completed["item_id"] == commit["item_id"] and commit["previous_item_id"] is None
        assert len(completed["transcript"].split()) >= 5, completed
        assert completed["words"] and completed["words"][-1]["end"] <= 6.0


def test_the_openai_sdk_realtime_client_transcribes(service):
    from openai import AsyncOpenAI

    audio = pcm16("test_short.wav", 24_000)

    async def run():
        client = AsyncOpenAI(api_key=KEYS[1], base_url=service.base + "/v1")
        async with client.realtime.connect(model="whisper", extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(
                session={"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}
            )
            for i in range(0, len(audio), 4800):
                await conn.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + 4800]).decode())
            await conn.input_audio_buffer.append(audio=base64.b64encode(b"\0\0" * 24_000).decode())
            seen = []
            async for event in conn:
                seen.append(event)
                assert event.type != "error", event
                if event.type == "conversation.item.input_audio_transcription.completed":
                    return seen
        return seen

    seen = asyncio.run(asyncio.wait_for(run(), 120))
    types = [e.type for e in seen]
    assert types[0] == "session.created" and "session.updated" in types and "input_audio_buffer.committed" in types
    completed = seen[-1]
    assert type(completed).__name__ == "ConversationItemInputAudioTranscriptionCompletedEvent"
    assert "everyone" in completed.transcript.lower(), completed.transcript
    assert completed.model_extra and completed.model_extra["words"], "word times ride along as an extra field"


def test_upgrades_are_refused_with_401_or_400_before_any_message(service):
    from test_auth_http import _ws_status

    assert _ws_status(ws_url(service)) == 401
    assert _ws_status(ws_url(service), subprotocols=["realtime", "openai-insecure-api-key.nope"]) == 401
    assert _ws_status(ws_url(service, "intent=conversation"), additional_headers=AUTH) == 400

    async def key_as_subprotocol():
        protocols = ["realtime", f"openai-insecure-api-key.{KEYS[0]}"]
        async with websockets.connect(ws_url(service), subprotocols=protocols) as ws:
            assert ws.subprotocol == "realtime", "the key subprotocol is never echoed"
            return (await recv(ws))["type"]

    assert asyncio.run(key_as_subprotocol()) == "session.created"


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _gauge(service: Service) -> float:
    text = httpx.get(service.base + "/metrics").text
    for line in text.splitlines():
        if line.startswith("reflector_gpu_realtime_sessions{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no realtime sessions gauge")


def test_clients_that_vanish_mid_turn_free_everything(service):
    """220 connect/abort cycles, each mid-turn with a partial decode asked for: open files and the
    session gauge come back flat, and memory does not climb. Memory is sampled every 20 cycles
    after 60 of warm-up (thread pools, model, malloc arenas): with encoder windows of several
    sizes the allocators swing by up to ~250 MB between samples (measured 433-683 MB every 50
    cycles, MALLOC_ARENA_MAX=2 alike), so a leak shows as the later samples' floor rising above
    the earlier ones' ceiling, not as one sample above another."""
    speech = pcm16("test_mathieu_hello.wav", 24_000, seconds=3.0)

    async def cycle():
        ws = await websockets.connect(ws_url(service), additional_headers=AUTH)
        await recv(ws)
        await send_audio(ws, speech, 24_000, frame_ms=500)
        await asyncio.sleep(0.05)
        ws.transport.abort()  # no close handshake: the client just vanishes

    async def cycles(n):
        for _ in range(n):
            await cycle()

    pid = service.proc.pid
    asyncio.run(cycles(60))  # warm-up
    time.sleep(1.0)
    fds = _fds(pid)
    samples = []
    for _ in range(8):
        asyncio.run(cycles(20))
        time.sleep(0.5)
        samples.append(_rss_mb(pid))
    deadline = time.monotonic() + 20
    while _gauge(service) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gauge(service) == 0
    time.sleep(1.5)
    assert _fds(pid) <= fds + 3, (fds, _fds(pid))
    assert min(samples[4:]) < max(samples[:4]) + 50, samples


@pytest.fixture(scope="module")
def small_pod(tmp_path_factory):
    """The whisper predictor's KServe entry point (what the transcriber-live pod runs) with tiny.en
    and small realtime limits."""
    from rgpu_local.models import whisper_tiny_en_dir

    svc = Service(
        {
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_WHISPER_MODEL": str(whisper_tiny_en_dir()),
            "REFLECTOR_GPU_WHISPER_CPU_THREADS": "1",
            "REFLECTOR_GPU_REALTIME_MAX_SESSIONS": "2",
            "REFLECTOR_GPU_REALTIME_MAX_SESSION_S": "3",
            "REFLECTOR_GPU_SHUTDOWN_DRAIN_S": "5",
        },
        tmp_path_factory.mktemp("live-pod"),
        "live-pod",
        kserve=("rgpu_whisper", "--model_name", "whisper"),
    )
    svc.wait_ready("whisper")
    yield svc
    svc.stop()


def test_turns_queued_beyond_the_bound_fail_at_once(small_pod):
    """A client committing far faster than real time cannot queue unbounded audio: past
    ``MAX_QUEUED_TURNS`` a turn gets ``.failed`` (``server_busy``) at once, and the session goes on."""
    from rgpu_serving.realtime import MAX_QUEUED_TURNS

    async def run():
        async with websockets.connect(ws_url(small_pod), additional_headers=AUTH) as ws:
            await recv(ws)
            update = {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}},
            }
            await ws.send(json.dumps(update))
            await recv(ws)
            half_second = base64.b64encode(b"\1\0" * 12_000).decode()
            for _ in range(MAX_QUEUED_TURNS + 3):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": half_second}))
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while True:
                event = await recv(ws, timeout=10)
                if event["type"].endswith(".failed"):
                    return event

    event = asyncio.run(run())
    assert event["error"]["code"] == "server_busy"


def test_session_limits_on_the_live_pod(small_pod):
    """Beyond the per-replica limit the upgrade is refused with 503 + Retry-After; a session past
    its maximum duration gets an error event and is closed."""

    async def run():
        a = await websockets.connect(ws_url(small_pod), additional_headers=AUTH)
        b = await websockets.connect(ws_url(small_pod), additional_headers=AUTH)
        try:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(ws_url(small_pod), additional_headers=AUTH)
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["retry-after"].isdigit()
            await recv(a)
            expired = await recv(a, timeout=10)
            assert expired["type"] == "error" and expired["error"]["code"] == "session_expired"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(a.recv(), 5)
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


def test_drain_sends_an_error_and_closes_with_1012(small_pod):
    async def run():
        ws = await websockets.connect(ws_url(small_pod), additional_headers=AUTH)
        await recv(ws)
        small_pod.proc.send_signal(signal.SIGTERM)
        event = await recv(ws, timeout=10)
        assert event["type"] == "error" and event["error"]["code"] == "server_shutting_down"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

    asyncio.run(run())
    assert small_pod.proc.wait(30) == 0
