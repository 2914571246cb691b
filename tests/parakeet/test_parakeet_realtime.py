"""``GET /v1/realtime`` on the Parakeet predictor: the same session code through the ``Engine``
protocol, with the real NeMo ``restore_from`` + ``transcribe(timestamps=True)`` path on the tiny
random-weight model (its text is meaningless; the event flow and shapes are what is checked)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from support import KEYS, Service, shared_audio


@pytest.fixture(scope="module")
def parakeet_live(tmp_path_factory, tiny_nemo):
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "parakeet",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_PROFILE": "live",
            "REFLECTOR_GPU_PARAKEET_MODEL": str(tiny_nemo),
            "REFLECTOR_GPU_PARAKEET_CPU_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        },
        tmp_path_factory.mktemp("parakeet-realtime"),
        "parakeet-realtime",
    )
    with svc.running("parakeet", timeout=600):
        yield svc


def _pcm16_16k(name: str) -> bytes:
    import numpy as np

    from rgpu_asr.audio import load_audio

    audio = load_audio(shared_audio(name), name, None, None)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_parakeet_serves_realtime_sessions(parakeet_live):
    from test_realtime_ws import check_event

    audio = _pcm16_16k("test_short.wav")
    url = parakeet_live.base.replace("http://", "ws://") + "/v1/realtime?intent=transcription"

    async def run(turn_detection):
        events = []
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEYS[0]}"}) as ws:
            events.append(json.loads(await ws.recv()))
            update = {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {
                        "input": {"format": {"type": "audio/pcm", "rate": 16000}, "turn_detection": turn_detection}
                    },
                },
            }
            await ws.send(json.dumps(update))
            step = 3200  # 100 ms
            for i in range(0, len(audio), step):
                await ws.send(
                    json.dumps(
                        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[i : i + step]).decode()}
                    )
                )
            silence = base64.b64encode(b"\0\0" * 16_000).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": silence}))
            if turn_detection is None:
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 120))
                events.append(event)
                assert event["type"] not in ("error", "conversation.item.input_audio_transcription.failed"), event
                if event["type"].endswith(".completed"):
                    committed = [e["item_id"] for e in events if e["type"] == "input_audio_buffer.committed"]
                    done = [e["item_id"] for e in events if e["type"].endswith(".completed")]
                    if set(committed) <= set(done):
                        return events

    for turn_detection in (None, {"type": "server_vad"}):
        events = asyncio.run(run(turn_detection))
        for event in events:
            check_event(event)
        completed = [e for e in events if e["type"].endswith(".completed")]
        assert completed
        for c in completed:
            assert isinstance(c["transcript"], str) and c["usage"]["seconds"] > 0
            assert all(0 <= w["start"] <= w["end"] <= 7.0 for w in c["words"]), c["words"]
