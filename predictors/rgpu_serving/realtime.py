"""``GET /v1/realtime``: live transcription over a WebSocket, OpenAI's Realtime transcription protocol.

The protocol edge only: JSON events in and out, limits, drain. What a session decides (pcm16
decoding, server VAD turns, stable partial text, word times) is :mod:`rgpu_asr.live`; every
decode goes through the predictor's shared ``Transcriber``, batched with the HTTP routes' work.

- Both session dialects: ``session.update`` (``session.created`` / ``session.updated``) and the
  older ``transcription_session.update`` (``transcription_session.*``, also chosen by the
  ``OpenAI-Beta: realtime=v1`` header the beta SDKs send).
- Bad input answers an ``error`` event with a code; the session goes on.
- Limits: sessions per replica (beyond: the upgrade is refused with 503 + ``Retry-After``, counted
  in their own gauge, not the HTTP admission), session duration, buffered audio.
- Drain (SIGTERM): each session gets an ``error`` event and close code 1012 (service restart), so
  clients reconnect to another replica at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

import rgpu_contract as contract
from rgpu_asr.errors import InvalidInput
from rgpu_asr.live import (
    RATES,
    Cleared,
    Committed,
    DecodeRequest,
    LiveInputError,
    LiveLimits,
    LiveStream,
    Pcm16Decoder,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
    transcript_text,
)
from rgpu_asr.transcriber import Transcriber
from rgpu_asr.types import SAMPLE_RATE, Word

from .metrics import REALTIME_SESSIONS, record_audio
from .settings import ServingSettings

log = logging.getLogger("rgpu.realtime")

PATH = contract.REALTIME_PATH
#: The subprotocol echoed when offered (never the key subprotocol).
SUBPROTOCOL = "realtime"
#: WebSocket close codes.
CLOSE_NORMAL = 1000
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
#: Words of the session's earlier transcripts given to the model as the text before a turn
#: (Whisper's previous-text prompt: names and terms stay consistent, and each turn is decoded
#: knowing what was said; on the bench meeting it takes per-turn WER from 7.8 % to 5.7 %).
CONTEXT_WORDS = 40
#: A client's ``transcription.prompt`` (Whisper reads its last 223 tokens anyway).
MAX_PROMPT_CHARS = 4096
#: Turns of one session waiting for their final decode; beyond it a turn fails at once (a client
#: sending audio much faster than real time cannot queue unbounded audio).
MAX_QUEUED_TURNS = 8


class RealtimeHost(Protocol):
    """What a realtime session needs from its predictor."""

    name: str
    ready: bool
    draining: bool
    settings: ServingSettings

    @property
    def transcriber(self) -> Transcriber: ...

    def language(self, value: str | None) -> str | None: ...


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _event_id() -> str:
    return f"event_{uuid.uuid4().hex[:24]}"


def _item_id() -> str:
    return f"item_{uuid.uuid4().hex[:24]}"


class ClientError(Exception):
    """A client event that cannot be honoured: an ``error`` event, and the session goes on."""

    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def _turn_detection(value: Any, param: str) -> TurnDetection | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientError("invalid_value", f"{param} must be an object or null", param)
    kind = value.get("type", "server_vad")
    if kind != "server_vad":
        raise ClientError("invalid_value", f"{param}.type '{kind}' is not supported; use server_vad or null", param)
    defaults = TurnDetection()
    try:
        return TurnDetection(
            threshold=float(defaults.threshold if value.get("threshold") is None else value["threshold"]),
            prefix_padding_ms=int(value.get("prefix_padding_ms") or defaults.prefix_padding_ms),
            silence_duration_ms=int(value.get("silence_duration_ms") or defaults.silence_duration_ms),
        )
    except (TypeError, ValueError) as exc:
        raise ClientError("invalid_value", f"{param}: {exc}", param) from exc
    except LiveInputError as exc:
        raise ClientError(exc.code, exc.detail, param) from exc


class SessionConfig:
    """The session's settings as the client set them (what session.updated reports)."""

    def __init__(self, model: str, language: str | None):
        self.rate = 24_000
        self.model = model
        self.language = language
        self.prompt: str | None = None
        self.turn_detection: TurnDetection | None = TurnDetection()

    def _td(self) -> dict[str, Any] | None:
        td = self.turn_detection
        if td is None:
            return None
        return {
            "type": "server_vad",
            "threshold": td.threshold,
            "prefix_padding_ms": td.prefix_padding_ms,
            "silence_duration_ms": td.silence_duration_ms,
        }

    def current(self, session_id: str) -> dict[str, Any]:
        """``RealtimeTranscriptionSessionCreateRequest`` (+ ``id``)."""
        return {
            "type": "transcription",
            "id": session_id,
            "object": "realtime.transcription_session",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": self.rate},
                    "transcription": {"model": self.model, "language": self.language, "prompt": self.prompt},
                    "turn_detection": self._td(),
                    "noise_reduction": None,
                }
            },
        }

    def beta(self, session_id: str) -> dict[str, Any]:
        """The beta ``TranscriptionSession`` (no ``client_secret``: no ephemeral keys here)."""
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": "pcm16" if self.rate == 24_000 else "pcm16_16000",
            "input_audio_transcription": {"model": self.model, "language": self.language, "prompt": self.prompt},
            "turn_detection": self._td(),
            "modalities": ["text"],
        }


class RealtimeSessions:
    """The realtime route of one transcription predictor: admission, limits and the sessions."""

    def __init__(self, host: RealtimeHost, vad: Callable[[], Any] | None = None):
        self.host = host
        self.active = 0
        self._vad = vad
        REALTIME_SESSIONS.labels(host.name).set(0)

    def vad(self) -> Any:
        return (self._vad or self.host.transcriber.vad)()

    async def endpoint(self, websocket: WebSocket) -> None:
        settings = self.host.settings
        intent = websocket.query_params.get("intent")
        if intent not in (None, "", "transcription"):
            await _deny(websocket, 400, f"intent '{intent}' is not served here; use intent=transcription")
            return
        if not self.host.ready or self.host.draining:
            why = "shutting down" if self.host.draining else "the model is not ready"
            await _deny(websocket, 503, f"realtime transcription unavailable: {why}", settings.retry_after_s)
            return
        if self.active >= settings.realtime_max_sessions:
            detail = f"server is saturated ({self.active} realtime sessions, limit {settings.realtime_max_sessions})"
            await _deny(websocket, 503, detail, settings.retry_after_s)
            return
        self.active += 1
        REALTIME_SESSIONS.labels(self.host.name).inc()
        try:
            await Session(self, websocket).run()
        finally:
            self.active -= 1
            REALTIME_SESSIONS.labels(self.host.name).dec()


async def _deny(websocket: WebSocket, status: int, detail: str, retry_after: int | None = None) -> None:
    """Refuse the upgrade with an HTTP answer before any message (ASGI's denial response), or
    close during the handshake where the server cannot send one."""
    headers = {"retry-after": str(retry_after)} if retry_after else None
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.receive()  # websocket.connect
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status, headers=headers))
    else:
        await websocket.close(CLOSE_TRY_AGAIN_LATER if status == 503 else 1008, reason=detail)


class Session:
    """One WebSocket: the receive loop, a final-decode worker, partial decodes and a watchdog."""

    def __init__(self, service: RealtimeSessions, websocket: WebSocket):
        self.service = service
        self.host = service.host
        self.ws = websocket
        self.settings = self.host.settings
        self.id = f"sess_{uuid.uuid4().hex[:24]}"
        self.beta = websocket.headers.get("openai-beta", "").strip().lower().startswith("realtime=v1")
        self.config = SessionConfig(websocket.query_params.get("model") or self.host.name, None)
        self.decoder = Pcm16Decoder(self.config.rate)
        limits = LiveLimits(
            max_buffer_s=self.settings.realtime_max_buffer_s,
            max_turn_s=min(30.0, self.host.transcriber.engine.limits.max_chunk_s),
            partial_interval_s=self.settings.realtime_partial_interval_ms / 1000,
        )
        self.stream = LiveStream(_item_id, service.vad().stream(), self.config.turn_detection, limits)
        self.language: str | None = self.host.language(None)
        self._finals: asyncio.Queue[DecodeRequest] = asyncio.Queue()
        self._partials: set[asyncio.Task[None]] = set()
        #: Per item, the speculative final decode asked for when its last silence began.
        self._speculative: dict[str, asyncio.Task[list[Word]]] = {}
        self._context: list[str] = []  # the last CONTEXT_WORDS words of completed turns
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._started = time.monotonic()

    # ---- sending -----------------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        payload = json.dumps({"event_id": _event_id(), **event})
        async with self._send_lock:
            try:
                await self.ws.send_text(payload)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._closed = True

    async def error(self, code: str, message: str, param: str | None = None, client_event: str | None = None) -> None:
        kind = "server_error" if code in ("server_shutting_down", "session_expired") else "invalid_request_error"
        error: dict[str, Any] = {"type": kind, "code": code, "message": message, "param": param}
        if client_event:
            error["event_id"] = client_event
        await self.send({"type": "error", "error": error})

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        async with self._send_lock:
            self._closed = True
            with contextlib.suppress(Exception):
                await self.ws.close(code, reason)

    def _session_event(self, kind: str) -> dict[str, Any]:
        if self.beta:
            return {"type": f"transcription_session.{kind}", "session": self.config.beta(self.id)}
        return {"type": f"session.{kind}", "session": self.config.current(self.id)}

    # ---- the session ----------------------------------------------------------------------------
    async def run(self) -> None:
        offered = self.ws.scope.get("subprotocols") or []
        await self.ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await self.send(self._session_event("created"))
        background = [
            asyncio.create_task(self._watchdog(), name=f"{self.id}-watchdog"),
            asyncio.create_task(self._final_worker(), name=f"{self.id}-finals"),
        ]
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8", "replace")
                await self.handle(text or "")
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away (or we closed): free everything below
        finally:
            self._closed = True
            tasks = [*background, *self._partials, *self._speculative.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stream.clear()

    async def _watchdog(self) -> None:
        """Drain and the session's time limit, checked a few times a second."""
        max_s = self.settings.realtime_max_session_s
        while not self._closed:
            if self.host.draining:
                await self.error("server_shutting_down", "the server is restarting; reconnect to continue")
                await self.close(CLOSE_SERVICE_RESTART, "service restart")
                return
            if time.monotonic() - self._started > max_s:
                await self.error("session_expired", f"the session reached its maximum duration of {max_s:g} s")
                await self.close(CLOSE_NORMAL, "session expired")
                return
            await asyncio.sleep(0.2)

    async def handle(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            await self.error("invalid_json", "the message is not valid JSON")
            return
        if not isinstance(event, dict):
            await self.error("invalid_json", "an event must be a JSON object")
            return
        kind = event.get("type")
        client_event = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        handler = {
            "session.update": self._session_update,
            "transcription_session.update": self._beta_session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            await self.error("unknown_event_type", f"unknown client event type {kind!r}", "type", client_event)
            return
        try:
            await handler(event)
        except ClientError as exc:
            await self.error(exc.code, exc.message, exc.param, client_event)
        except LiveInputError as exc:
            await self.error(exc.code, exc.detail, None, client_event)
        except InvalidInput as exc:
            await self.error("invalid_value", exc.detail, None, client_event)

    # ---- client events -------------------------------------------------------------------------
    def _apply(self, rate: int | None, transcription: Any, turn_detection: Any, has_td: bool, param: str) -> None:
        """Check every field first, then change the session at once (an error changes nothing)."""
        if rate is not None and rate not in RATES:
            raise ClientError(
                "unsupported_audio_format", f"unsupported pcm16 rate {rate}; use 24000 or 16000", f"{param}.rate"
            )
        language, model, prompt = self.language, self.config.model, self.config.prompt
        lang_value = self.config.language
        if transcription is not None:
            if not isinstance(transcription, dict):
                raise ClientError("invalid_value", "transcription must be an object", param)
            if "language" in transcription:
                lang_value = transcription.get("language") or None
                language = self.host.language(lang_value)
            model = str(transcription.get("model") or model)
            prompt = transcription.get("prompt") if "prompt" in transcription else prompt
            if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS):
                raise ClientError(
                    "invalid_value",
                    f"transcription.prompt must be text of at most {MAX_PROMPT_CHARS} characters",
                    param,
                )
        td = _turn_detection(turn_detection, f"{param}.turn_detection") if has_td else self.config.turn_detection
        if rate is not None and rate != self.config.rate:
            self.config.rate = rate
            self.decoder = Pcm16Decoder(rate)
        self.language, self.config.language, self.config.model, self.config.prompt = language, lang_value, model, prompt
        if has_td:
            self.config.turn_detection = td
            self.stream.configure(self.service.vad().stream() if td is not None else None, td)

    async def _session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise ClientError("invalid_value", "session.update needs a session object", "session")
        if session.get("type", "transcription") != "transcription":
            raise ClientError("invalid_value", "only transcription sessions are served here", "session.type")
        audio = session.get("audio") or {}
        audio_input = audio.get("input") or {} if isinstance(audio, dict) else {}
        if not isinstance(audio_input, dict):
            raise ClientError("invalid_value", "session.audio.input must be an object", "session.audio.input")
        rate = None
        fmt = audio_input.get("format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type", "audio/pcm") != "audio/pcm":
                raise ClientError(
                    "unsupported_audio_format", "only audio/pcm (pcm16) is supported", "session.audio.input.format"
                )
            rate = fmt.get("rate", 24_000)
        self._apply(
            rate,
            audio_input.get("transcription"),
            audio_input.get("turn_detection"),
            "turn_detection" in audio_input,
            "session.audio.input",
        )
        self.beta = False
        await self.send(self._session_event("updated"))

    async def _beta_session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise ClientError("invalid_value", "transcription_session.update needs a session object", "session")
        rate = None
        fmt = session.get("input_audio_format")
        if fmt is not None:
            rates = {"pcm16": 24_000, "pcm16_16000": 16_000}
            if fmt not in rates:
                raise ClientError(
                    "unsupported_audio_format", f"input_audio_format {fmt!r} is not supported; use pcm16", "session"
                )
            rate = rates[fmt]
        self._apply(
            rate,
            session.get("input_audio_transcription"),
            session.get("turn_detection"),
            "turn_detection" in session,
            "session",
        )
        self.beta = True
        await self.send(self._session_event("updated"))

    async def _append(self, event: dict[str, Any]) -> None:
        data = event.get("audio")
        if not isinstance(data, str):
            raise ClientError("invalid_value", "input_audio_buffer.append needs base64 audio", "audio")
        # The cap before decoding: 2 bytes a sample at the session's rate, base64 is 4/3 of that.
        cap_bytes = int(self.settings.realtime_max_buffer_s * self.config.rate * 2)
        if len(data) > cap_bytes * 4 // 3 + 4:
            raise ClientError(
                "input_audio_buffer_full",
                f"one append may carry at most {self.settings.realtime_max_buffer_s:g} s of audio",
                "audio",
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientError("invalid_base64", "audio is not valid base64", "audio") from exc
        await self._emit(self.stream.append(self.decoder.decode(raw)))

    async def _commit(self, event: dict[str, Any]) -> None:
        await self._emit(self.stream.commit())

    async def _clear(self, event: dict[str, Any]) -> None:
        await self._emit(self.stream.clear())

    async def _emit(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, SpeechStarted):
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": ev.audio_start_ms,
                        "item_id": ev.item_id,
                    }
                )
            elif isinstance(ev, SpeechStopped):
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": ev.audio_end_ms,
                        "item_id": ev.item_id,
                    }
                )
            elif isinstance(ev, Committed):
                await self.send(
                    {
                        "type": "input_audio_buffer.committed",
                        "item_id": ev.item_id,
                        "previous_item_id": ev.previous_item_id,
                    }
                )
            elif isinstance(ev, Cleared):
                await self.send({"type": "input_audio_buffer.cleared"})
            elif isinstance(ev, DecodeRequest):
                busy = ev.final and self._finals.qsize() >= MAX_QUEUED_TURNS
                if ev.final and (busy or not ev.reuse):
                    self._unspeculate(ev.item_id)
                if busy:
                    self.stream.forget(ev.item_id)
                    await self._failed(ev.item_id, "server_busy", f"more than {MAX_QUEUED_TURNS} turns await decoding")
                elif ev.final:
                    self._finals.put_nowait(ev)
                elif ev.speculative:
                    # Full quality and ahead of partial work: it is the final decode if the
                    # silence lasts. An older one for the item (the speech went on) is moot.
                    self._unspeculate(ev.item_id)
                    speculative = asyncio.create_task(self._speculate(ev), name=f"{self.id}-speculative")
                    speculative.add_done_callback(_retrieved)  # one the turn never uses may fail unheard
                    self._speculative[ev.item_id] = speculative
                else:
                    partial = asyncio.create_task(self._partial(ev), name=f"{self.id}-partial")
                    self._partials.add(partial)
                    partial.add_done_callback(self._partials.discard)

    # ---- decoding ------------------------------------------------------------------------------
    def _prompt(self) -> str | None:
        """The client's ``prompt`` and the session's latest transcript words: what a full decode
        is told came before (drafts get none, so they batch across sessions)."""
        text = " ".join(filter(None, [self.config.prompt or "", " ".join(self._context)]))
        return text or None

    async def _decode(self, audio: Any, final: bool) -> list[Word]:
        transcriber = self.host.transcriber
        if len(audio) > transcriber.engine.limits.max_chunk_s * SAMPLE_RATE:
            job = await asyncio.to_thread(transcriber.plan, audio)  # VAD-chunked: off the loop
        else:
            job = transcriber.plan(audio)
        # A turn's final decode goes ahead of queued partial ones (someone waits on it; partials
        # are best-effort and come again); partial ones are the engine's cheaper draft decode.
        started = time.monotonic()
        prompt = self._prompt() if final else None
        transcript = await transcriber.transcribe(
            job, self.language, first=final, draft=not final, prompt=prompt, live=True
        )
        log.debug(
            "%s: %s decode of %.1f s of audio in %.2f s",
            self.id,
            "full" if final else "draft",
            len(audio) / SAMPLE_RATE,
            time.monotonic() - started,
        )
        if self.language is None and transcript.language:
            self.language = transcript.language  # detected once per session, not per decode
        return transcript.words

    async def _speculate(self, request: DecodeRequest) -> list[Word]:
        """The turn's full decode at the start of a silence: the final transcript if the silence
        lasts; either way a hypothesis for its partial text."""
        words = await self._decode(request.audio, final=True)
        delta = self.stream.hypothesis(request.item_id, words)
        if delta:
            await self.send(self._delta(request.item_id, delta))
        return words

    def _unspeculate(self, item_id: str) -> None:
        task = self._speculative.pop(item_id, None)
        if task is not None:
            task.cancel()

    async def _partial(self, request: DecodeRequest) -> None:
        try:
            words = await self._decode(request.audio, final=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("partial decode failed in %s: %s", self.id, exc)
            self.stream.partial_failed(request.item_id)
            return
        delta = self.stream.partial(request.item_id, words)
        if delta:
            await self.send(self._delta(request.item_id, delta))

    async def _failed(self, item_id: str, code: str, message: str) -> None:
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item_id,
                "content_index": 0,
                "error": {"type": "server_error", "code": code, "message": message},
            }
        )

    def _delta(self, item_id: str, delta: str) -> dict[str, Any]:
        return {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": item_id,
            "content_index": 0,
            "delta": delta,
        }

    async def _final_worker(self) -> None:
        """Final decodes one after another, so ``.completed`` events come in turn order."""
        while True:
            request = await self._finals.get()
            seconds = len(request.audio) / SAMPLE_RATE
            speculative = self._speculative.pop(request.item_id, None) if request.reuse else None
            try:
                if speculative is not None:
                    words = await speculative
                else:
                    words = await self._decode(request.audio, final=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("transcription of %s failed", request.item_id)
                self.stream.forget(request.item_id)
                await self._failed(request.item_id, "transcription_failed", str(exc))
                continue
            record_audio(self.host.name, PATH, seconds)
            delta, placed = self.stream.final(request.item_id, words, request.offset_s)
            self._context = (self._context + [w.word.strip() for w in placed])[-CONTEXT_WORDS:]
            if delta:
                await self.send(self._delta(request.item_id, delta))
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": request.item_id,
                    "content_index": 0,
                    "transcript": transcript_text(placed),
                    "usage": {"type": "duration", "seconds": round(seconds, 3)},
                    "words": [w.as_dict() for w in placed],
                }
            )


__all__ = ["PATH", "RealtimeSessions", "Session"]
