"""The pure pieces of the serving core: chunk planning, timing, format detection, policies."""

from __future__ import annotations

import asyncio
import ipaddress

import numpy as np
import pytest

from rgpu_asr import audio as audio_io
from rgpu_asr.batching import DynamicBatcher
from rgpu_asr.chunking import WINDOW, Chunk, Segment, plan_chunks, speech_segments, whole_file_chunks
from rgpu_asr.errors import UnsupportedAudio
from rgpu_asr.timing import finalize_words, place_chunk_words
from rgpu_asr.types import Transcript, Word
from rgpu_asr.vad import SileroVad
from rgpu_serving.admission import Admission
from rgpu_serving.auth import KeyStore, is_open_path, parse_keys
from rgpu_serving.errors import ApiError, status_of
from rgpu_serving.fetch import UrlPolicy, address_blocked
from support import shared_audio

SR = 16_000


# --- VAD chunk planning ------------------------------------------------------------------
def test_segments_merge_into_chunks_of_at_most_30_s_keeping_silences():
    segs = [Segment(0, 10 * SR), Segment(12 * SR, 25 * SR), Segment(27 * SR, 40 * SR), Segment(41 * SR, 45 * SR)]
    chunks = plan_chunks(segs)
    assert chunks == [Chunk(0, 25 * SR), Chunk(27 * SR, 45 * SR)]
    assert all(c.end - c.start <= 30 * SR for c in chunks)


def test_a_segment_longer_than_the_maximum_is_cut_evenly():
    chunks = plan_chunks([Segment(0, 75 * SR)])
    assert [c.end - c.start for c in chunks] == [25 * SR] * 3
    assert chunks[0].start == 0 and chunks[-1].end == 75 * SR


def test_short_chunks_are_padded_to_half_a_second():
    (chunk,) = plan_chunks([Segment(SR, SR + 1600)])
    assert chunk.pad == SR // 2 - 1600
    audio = np.ones(3 * SR, dtype=np.float32)
    piece = chunk.audio(audio)
    assert len(piece) == SR // 2 and piece[:1600].all() and not piece[1600:].any()


def test_whole_file_chunks_for_short_and_empty_audio():
    assert whole_file_chunks(10 * SR) == [Chunk(0, 10 * SR)]
    (empty,) = whole_file_chunks(0)
    assert empty.pad == SR // 2


def test_speech_segments_hysteresis_and_padding():
    probs = np.array([0.0] * 10 + [0.9] * 20 + [0.0] * 30 + [0.9] * 10 + [0.0] * 5)
    segs = speech_segments(probs, len(probs) * WINDOW)
    assert len(segs) == 2
    assert segs[0].start < 10 * WINDOW and segs[0].end > 30 * WINDOW
    assert segs[1].start < 60 * WINDOW <= segs[1].end


def test_silero_finds_the_turns_of_a_real_meeting():
    audio = audio_io.decode_file(shared_audio("meeting_three_voices.wav"))
    segs = SileroVad().segments(audio)
    assert 10 <= len(segs) <= 40
    speech = sum(s.length for s in segs) / len(audio)
    assert 0.5 < speech < 0.98
    assert all(c.end - c.start <= 30 * SR for c in plan_chunks(segs))


# --- word timing ---------------------------------------------------------------------------
def test_chunk_words_are_shifted_and_clamped_into_the_chunk():
    words = [Word(" a", 0.1, 0.4), Word(" b", 0.9, 1.4)]  # b runs into padding past 1.0 s
    placed = place_chunk_words(words, chunk_offset_s=30.0, chunk_duration_s=1.0)
    assert placed == [Word(" a", 30.1, 30.4), Word(" b", 30.9, 31.0)]


def test_finalize_rounds_and_clamps_each_end_to_the_next_start_and_the_edge_shifts_once():
    words = [Word(" x", 1.0, 2.5), Word(" y", 2.0, 3.0), Word(" z", 2.9999, 3.2)]
    out = finalize_words(words)
    assert [(w.start, w.end) for w in out] == [(1.0, 2.0), (2.0, 3.0), (3.0, 3.2)]
    shifted = Transcript("x y z", out, [], "en", 3.2).shifted(10)
    assert [(w.start, w.end) for w in shifted.words] == [(11.0, 12.0), (12.0, 13.0), (13.0, 13.2)]


# --- audio formats -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filename,ctype,head,expected",
    [
        ("a.MP3", None, b"", "mp3"),
        ("a.m4a", "audio/wav", b"", "m4a"),
        ("noext", "audio/x-wav", b"", "wav"),
        ("noext", "application/octet-stream", b"RIFF\0\0\0\0WAVEfmt ", "wav"),
        (None, None, b"ID3\x04", "mp3"),
        (None, None, b"\0\0\0\x20ftypisom", "mp4"),
        (None, None, b"\x1a\x45\xdf\xa3", "webm"),
    ],
)
def test_format_by_extension_then_content_type_then_bytes(filename, ctype, head, expected):
    assert audio_io.detect_format(filename, ctype, head) == expected


def test_unknown_format_and_extension_are_400():
    with pytest.raises(UnsupportedAudio) as e:
        audio_io.detect_format("x.flac", None, b"fLaC")
    assert status_of(e.value) == 400
    with pytest.raises(UnsupportedAudio):
        audio_io.detect_format(None, "text/plain", b"hello")


def test_decode_gives_16k_mono_float32():
    audio = audio_io.decode_file(shared_audio("test_mathieu_hello.mp3"))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / SR == pytest.approx(19.97, abs=0.1)


# --- URL policy ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ip,blocked",
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.100.100.200", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fd00:ec2::254", True),
        ("fe80::1", True),
        ("::ffff:10.0.0.1", True),
        ("224.0.0.1", True),
    ],
)
def test_address_policy(ip, blocked):
    assert address_blocked(ipaddress.ip_address(ip)) is blocked


def test_allowlist_accepts_cidrs_and_host_names():
    policy = UrlPolicy.from_allowlist(["10.0.0.0/8", "minio.internal", "127.0.0.2"])
    assert not address_blocked(ipaddress.ip_address("10.9.9.9"), policy.allow_networks)
    assert not address_blocked(ipaddress.ip_address("127.0.0.2"), policy.allow_networks)
    assert address_blocked(ipaddress.ip_address("127.0.0.1"), policy.allow_networks)
    assert "minio.internal" in policy.allow_hosts


# --- keys ------------------------------------------------------------------------------------
def test_keys_parse_from_lines_and_commas():
    assert parse_keys(" a, b\nc\n\n,d ") == ["a", "b", "c", "d"]


def test_keystore_reads_a_secret_directory_and_notices_changes(tmp_path):
    (tmp_path / "key").write_text("one")
    (tmp_path / "..data").mkdir()
    store = KeyStore(["env"], tmp_path, refresh_s=0)
    assert store.verify("one") and store.verify("env") and not store.verify("two")
    (tmp_path / "key").write_text("two, three")
    assert store.verify("two") and store.verify("three") and not store.verify("one")


def test_open_paths():
    assert is_open_path("/v2/health/ready") and is_open_path("/v1/models/whisper")
    assert not is_open_path("/v1/models/whisper:predict") and not is_open_path("/v2/models/whisper/infer")
    assert not is_open_path("/v1/audio/transcriptions")


# --- batching and admission --------------------------------------------------------------------
def test_batcher_gathers_concurrent_items_by_key_and_keeps_order():
    calls = []

    def run(key, items):
        calls.append((key, list(items)))
        return [f"{key}:{i}" for i in items]

    async def main():
        b = DynamicBatcher(run, max_batch=4, max_wait_s=0.02)
        res = await asyncio.gather(b.submit([1, 2], "en"), b.submit([3], "fr"), b.submit([4, 5, 6], "en"))
        b.close()
        return res

    res = asyncio.run(main())
    assert res == [["en:1", "en:2"], ["fr:3"], ["en:4", "en:5", "en:6"]]
    # Everything was queued before the worker woke: the first key's items fill a batch of 4
    # (skipping the other key's), then the other key, then the rest; no batch mixes keys.
    assert calls == [("en", [1, 2, 4, 5]), ("fr", [3]), ("en", [6])]


def test_batcher_errors_reach_every_caller_in_the_batch():
    def run(key, items):
        raise ValueError("model exploded")

    async def main():
        b = DynamicBatcher(run, max_batch=4, max_wait_s=0.01)
        out = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        b.close()
        return out

    assert [type(e) for e in asyncio.run(main())] == [ValueError, ValueError]


def test_batcher_fails_only_the_item_whose_result_is_an_exception():
    def run(key, items):
        return [ValueError(f"bad {i}") if i == 2 else f"ok {i}" for i in items]

    async def main():
        b = DynamicBatcher(run, max_batch=4, max_wait_s=0.02)
        out = await asyncio.gather(b.submit([1]), b.submit([2]), b.submit([3]), return_exceptions=True)
        b.close()
        return out

    first, second, third = asyncio.run(main())
    assert first == ["ok 1"] and third == ["ok 3"]
    assert isinstance(second, ValueError) and str(second) == "bad 2"


def _gauge(name: str, route: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {"route": route}) or 0.0


def test_admission_queues_fifo_then_answers_503_with_retry_after_beyond_the_queue():
    """One in flight, two queued (served in arrival order), the fourth refused at once; the
    gauges count each state and the wait histogram sees every admitted request."""
    route = "/unit-fifo"
    waits_before = _gauge("reflector_gpu_queue_wait_seconds_count", route)

    async def main():
        adm = Admission(max_in_flight=1, max_queued=2, retry_after_s=7)
        order: list[int] = []
        release = asyncio.Event()

        async def work(i: int):
            async with adm.admit(route):
                order.append(i)
                await release.wait()

        tasks = [asyncio.create_task(work(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert (adm.in_flight, adm.queued) == (1, 2)
        assert _gauge("reflector_gpu_inflight_requests", route) == 1
        assert _gauge("reflector_gpu_queued_requests", route) == 2
        with pytest.raises(ApiError) as e:
            async with adm.admit(route):
                pass
        release.set()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2]
        assert (adm.in_flight, adm.queued) == (0, 0)
        return e.value

    err = asyncio.run(main())
    assert err.status_code == 503 and err.headers == {"Retry-After": "7"}
    assert "1 + 2" in str(err.detail)
    assert _gauge("reflector_gpu_inflight_requests", route) == 0
    assert _gauge("reflector_gpu_queued_requests", route) == 0
    assert _gauge("reflector_gpu_queue_wait_seconds_count", route) - waits_before == 3


def test_admission_a_cancelled_waiter_leaves_the_queue_and_frees_nothing_twice():
    route = "/unit-cancel"

    async def main():
        adm = Admission(max_in_flight=1, max_queued=1, retry_after_s=1)
        release = asyncio.Event()

        async def hold():
            async with adm.admit(route):
                await release.wait()

        async def wait_then_run():
            async with adm.admit(route):
                pass

        first = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(wait_then_run())
        await asyncio.sleep(0.01)
        assert adm.queued == 1
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert adm.queued == 0 and adm.in_flight == 1
        release.set()
        await first
        assert adm.in_flight == 0
        async with adm.admit(route):  # the slot is free again
            assert adm.in_flight == 1

    asyncio.run(main())
    assert _gauge("reflector_gpu_queued_requests", route) == 0


def test_admission_limits_from_settings_defaults_and_the_deprecated_total():
    from rgpu_serving.settings import ServingSettings

    assert ServingSettings().admission_limits(1, 4) == (1, 4)
    assert ServingSettings(max_in_flight=3, max_queued=0).admission_limits(1, 4) == (3, 0)
    # REFLECTOR_GPU_MAX_PENDING_REQUESTS alone: the same total held, in flight first.
    assert ServingSettings(max_pending_requests=4).admission_limits(10, 20) == (4, 0)
    assert ServingSettings(max_pending_requests=6).admission_limits(1, 4) == (1, 5)
    # The new setting wins over the deprecated one.
    assert ServingSettings(max_pending_requests=6, max_queued=2).admission_limits(1, 4) == (1, 2)


def test_graceful_shutdown_drains_on_sigterm_only_once():
    """SIGTERM: not ready at once, close after the drain; a second signal closes now, a third
    forces; SIGINT (Ctrl-C) closes without a drain."""
    import signal
    import time

    import uvicorn

    from rgpu_serving.shutdown import DrainingServer

    class Model:
        draining = False

        def start_draining(self):
            self.draining = True

    def server_for(models, drain_s):
        return DrainingServer(uvicorn.Config(app=None), models, drain_s=drain_s)

    model = Model()
    server = handler = server_for([model], drain_s=0.3)
    handler.handle_exit(signal.SIGTERM, None)
    assert model.draining is True and server.should_exit is False
    time.sleep(0.6)
    assert server.should_exit is True and server.force_exit is False
    handler.handle_exit(signal.SIGTERM, None)
    assert server.force_exit is True

    server = server_for([Model()], drain_s=30)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)  # impatient: skip the rest of the drain
    assert server.should_exit is True and server.force_exit is False

    server = server_for([Model()], drain_s=30)
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit is True


def test_key_store_follows_a_kubelet_secret_update(tmp_path):
    """A mounted Secret as the kubelet writes it (AtomicWriter): ``apikey -> ..data/apikey``,
    ``..data -> ..<timestamp>``, updated by swapping the ``..data`` link. Rotation old -> old,new
    -> new is seen without a restart; the old version's directory removed after the swap
    (as the kubelet does) does not matter."""
    import os
    from pathlib import Path

    from rgpu_serving.auth import KeyStore

    def write(version: str, text: str) -> None:
        (tmp_path / version).mkdir()
        (tmp_path / version / "apikey").write_text(text)
        os.symlink(version, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    write("..v1", "old-key")
    os.symlink("..data/apikey", tmp_path / "apikey")
    store = KeyStore([], Path(tmp_path), refresh_s=0)
    assert store.verify("old-key") and not store.verify("new-key")
    write("..v2", "old-key,new-key")  # both valid while clients move over
    assert store.verify("old-key") and store.verify("new-key")
    write("..v3", "new-key\n")
    for old in ("..v1", "..v2"):
        (tmp_path / old / "apikey").unlink()
        (tmp_path / old).rmdir()
    assert store.verify("new-key") and not store.verify("old-key")
    assert store.count == 1


def test_a_vad_chunk_whose_words_stop_early_gets_its_rest_decoded_again():
    from rgpu_asr.transcriber import dropped_tails
    from rgpu_asr.types import ChunkTranscript

    chunks = [Chunk(0, 10 * SR), Chunk(12 * SR, 12 * SR + 7 * SR), Chunk(20 * SR, 21 * SR)]
    results = [
        ChunkTranscript([Word(" a", 0.0, 9.5)]),  # speech to the end: fine
        ChunkTranscript([Word(" b", 0.0, 2.0)]),  # 5 s of speech after its last word
        ChunkTranscript([]),  # nothing at all in 1 s: under the threshold
    ]
    assert dropped_tails(chunks, results, 0.5) == [(1, Chunk(14 * SR, 19 * SR))]
    # A short rest gets silence appended to the engine's minimum, as any chunk does.
    short = dropped_tails([Chunk(0, 2 * SR)], [ChunkTranscript([Word(" c", 0.0, 0.4)])], 2.0)
    assert short == [(0, Chunk(int(0.4 * SR), 2 * SR, int(0.4 * SR)))]
