"""Live transcription of one audio stream (pure, synchronous): what a realtime session decides.

The WebSocket edge (``rgpu_serving.realtime``) feeds raw pcm16 in and gets back plain events and
decode requests; it runs the decodes through the shared ``Transcriber`` (batched with every other
request) and hands the results back here. Nothing in this module does I/O or knows the protocol's
JSON, so turn detection, partial text and word times are tested without a socket or a model.

- ``Pcm16Decoder``: little-endian pcm16 at 24 or 16 kHz -> 16 kHz float32, streaming (a polyphase
  low-pass resampler that keeps its history, so frame boundaries leave no clicks).
- ``LiveStream``: server VAD turn detection (Silero, streaming; OpenAI's ``threshold`` /
  ``prefix_padding_ms`` / ``silence_duration_ms``) or manual commits, bounded buffers, a partial
  re-decode at a fixed audio interval while speech goes on, a speculative final decode when a
  silence begins (ready by the time the silence ends the turn), and the one rule for partial text:
  only a prefix two consecutive decodes agree on is sent, and it only ever grows (a draft's
  repeated tail, a decoder stutter, never counts).

Times: every sample appended since the stream began counts (cleared audio too), so word times
and ``audio_start_ms`` / ``audio_end_ms`` are seconds / ms from the start of the session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .chunking import WINDOW
from .errors import InvalidInput
from .repeats import norm_word, repeated_tail
from .timing import finalize_words
from .types import SAMPLE_RATE, Word
from .vad import VadStream

Samples = npt.NDArray[np.float32]
#: A silence this long (at most half the turn-ending one) starts the speculative final decode;
#: shorter dips of the VAD's probability inside a word start nothing.
SPECULATE_AFTER = SAMPLE_RATE // 10

#: Input rates a client may declare (OpenAI's ``audio/pcm`` is 24 kHz; 16 kHz spares a resample).
RATES = (24_000, 16_000)


class LiveInputError(InvalidInput):
    """Bad client input; ``code`` is the error code the edge sends (the session goes on)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


# ---- pcm16 -> 16 kHz float -----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _lowpass_48k(taps: int = 121, cutoff_hz: float = 7_600.0) -> npt.NDArray[np.float64]:
    """Windowed-sinc low-pass at 48 kHz (24 kHz upsampled by 2), gain 2 for the zero stuffing."""
    n = np.arange(taps) - (taps - 1) / 2
    fc = cutoff_hz / 48_000
    h = 2 * fc * np.sinc(2 * fc * n) * np.blackman(taps)
    return np.asarray(2 * h / h.sum(), dtype=np.float64)


class Pcm16Decoder:
    """Streaming pcm16 decoder: bytes at ``rate`` in, 16 kHz float32 out (24 kHz: up 2, low-pass,
    down 3, with the filter history carried across calls; output delayed by nothing net)."""

    def __init__(self, rate: int):
        if rate not in RATES:
            raise LiveInputError("unsupported_audio_format", f"unsupported pcm16 rate {rate}; use 24000 or 16000")
        self.rate = rate
        self._h = _lowpass_48k()
        self._delay = (len(self._h) - 1) // 2
        self._history = np.zeros(0, dtype=np.float64)  # the input samples outputs still need
        self._history_start = 0  # absolute index of _history[0]
        self._n_in = 0
        self._n_out = 0

    @staticmethod
    def samples(data: bytes) -> Samples:
        if len(data) % 2:
            raise LiveInputError("invalid_audio_length", f"pcm16 audio has an odd number of bytes ({len(data)})")
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)

    def decode(self, data: bytes) -> Samples:
        x = self.samples(data)
        if self.rate == SAMPLE_RATE:
            return x
        return self._resample(x)

    def _resample(self, x: Samples) -> Samples:
        self._history = np.concatenate([self._history, x.astype(np.float64)])
        self._n_in += len(x)
        # Output n sits at upsampled index m = 3n + delay and needs input up to floor(m / 2).
        last = (2 * self._n_in - 2 - self._delay) // 3  # the last output with all its input here
        if last < self._n_out:
            return np.zeros(0, dtype=np.float32)
        n = np.arange(self._n_out, last + 1)
        m = 3 * n[:, None] + self._delay - np.arange(len(self._h))[None, :]  # upsampled indices
        valid = (m % 2 == 0) & (m >= 0)
        idx = np.where(valid, m // 2 - self._history_start, 0)
        idx = np.clip(idx, 0, len(self._history) - 1)
        y = np.where(valid, self._history[idx], 0.0) @ self._h
        self._n_out = last + 1
        # Keep only what the next output can still reach.
        keep_from = max(0, (3 * self._n_out + self._delay - len(self._h) + 1) // 2)
        drop = keep_from - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep_from
        return np.clip(y, -1.0, 1.0).astype(np.float32)


# ---- turn detection and partial text ----------------------------------------------------------
@dataclass(frozen=True)
class TurnDetection:
    """OpenAI's ``server_vad`` knobs (same defaults)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise LiveInputError("invalid_value", "turn_detection.threshold must be between 0 and 1")
        if not 0 <= self.prefix_padding_ms <= 10_000 or not 0 <= self.silence_duration_ms <= 10_000:
            raise LiveInputError("invalid_value", "turn_detection times must be between 0 and 10000 ms")


@dataclass(frozen=True)
class LiveLimits:
    #: Audio buffered for one turn (manual commits; a VAD turn is cut into turns of max_turn_s).
    max_buffer_s: float = 120.0
    #: A VAD turn longer than this is committed and a new one starts (one model chunk).
    max_turn_s: float = 30.0
    #: Seconds of new speech between partial re-decodes.
    partial_interval_s: float = 0.25


# Events LiveStream emits (the edge renders them as protocol JSON).
@dataclass(frozen=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True)
class Committed:
    item_id: str
    previous_item_id: str | None


@dataclass(frozen=True)
class Cleared:
    pass


@dataclass(frozen=True, eq=False)  # compared by identity: it holds an array
class DecodeRequest:
    """Audio to transcribe for ``item_id``; ``final`` decodes end the turn, partial ones feed
    :meth:`LiveStream.partial`. ``offset_s`` is where the audio starts in session time.

    ``speculative``: a full decode of the turn so far, asked for the moment a silence begins,
    so that a turn ending there has its transcript ready when the silence is long enough to end
    it (the silence costs ``silence_duration_ms`` of waiting anyway). The final request of such a
    turn says ``reuse``: the item's last speculative decode covers all of its speech."""

    item_id: str
    audio: Samples = field(repr=False)
    offset_s: float
    final: bool
    speculative: bool = False
    reuse: bool = False


Event = SpeechStarted | SpeechStopped | Committed | Cleared | DecodeRequest


def _agree(a: list[str], b: list[str]) -> int:
    """Length of the longest common prefix of two word lists, compared normalized."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if norm_word(x) != norm_word(y):
            break
        n += 1
    return n


def join_words(words: list[str], continuing: bool = False) -> str:
    """Words as text. Engines mark word boundaries with a space: Whisper's words carry a leading
    one, Parakeet's a trailing one; words with neither (Whisper in Chinese or Japanese) join as
    they are. ``continuing``: the text goes after words already sent."""
    out = ""
    for i, word in enumerate(words):
        spaced = word[:1].isspace() or word[-1:].isspace()
        if spaced and (i > 0 or continuing):
            out += " "
        out += word.strip() if spaced else word
    return out


@dataclass
class _Turn:
    item_id: str
    start: int  # absolute sample of the turn's audio start
    sent: list[str] = field(default_factory=list)  # words already sent as deltas
    previous: list[str] = field(default_factory=list)  # the last partial hypothesis
    partial_at: int = 0  # turn length (samples) when the last partial was asked for
    partial_busy: bool = False
    speech: bool = False  # started by the VAD (speech_started was sent)
    speculated_at: int | None = None  # the silence start a speculative final decode was asked at


class LiveStream:
    """One session's audio, turn state and partial text. ``item_id`` comes from ``new_id``."""

    def __init__(
        self,
        new_id: Callable[[], str],
        vad: VadStream | None,
        turn_detection: TurnDetection | None = TurnDetection(),  # noqa: B008 (frozen)
        limits: LiveLimits = LiveLimits(),  # noqa: B008 (frozen)
    ):
        self._new_id = new_id
        self.vad = vad
        self.turn_detection = turn_detection if vad is not None else None
        self.limits = limits
        self.clock = 0  # samples appended since the session began
        self._buffer = np.zeros(0, dtype=np.float32)  # audio since _buffer_start
        self._buffer_start = 0
        self._turn: _Turn | None = None  # the open VAD turn
        self._last_item: str | None = None
        self._silence_from: int | None = None
        self._pending_vad = 0  # samples appended but not yet scored (under one window)
        self._partials: dict[str, _Turn] = {}  # open turns whose partial decodes may come back
        self._finals: dict[str, _Turn] = {}  # committed turns awaiting their final decode

    # -- configuration ----------------------------------------------------------------------------
    def configure(self, vad: VadStream | None, turn_detection: TurnDetection | None) -> None:
        """A session update: server VAD on (with these knobs) or off (manual commits)."""
        self.vad = vad
        self.turn_detection = turn_detection if vad is not None else None
        self._silence_from = None
        self._pending_vad = 0

    def _id(self) -> str:
        return self._new_id()

    @property
    def buffered_s(self) -> float:
        return len(self._buffer) / SAMPLE_RATE

    # -- client events ----------------------------------------------------------------------------
    def append(self, audio: Samples) -> list[Event]:
        """New 16 kHz audio; with server VAD, the turn events it caused and decode requests."""
        max_buffer = int(self.limits.max_buffer_s * SAMPLE_RATE)
        if len(audio) > max_buffer or (self.turn_detection is None and len(self._buffer) + len(audio) > max_buffer):
            raise LiveInputError(
                "input_audio_buffer_full",
                f"the input audio buffer would exceed {self.limits.max_buffer_s:g} s; commit or clear it first",
            )
        self._buffer = np.concatenate([self._buffer, audio])
        self.clock += len(audio)
        if self.turn_detection is None or self.vad is None:
            # Manual commits: the buffer is one turn; partial text as it grows.
            if self._turn is None:
                self._turn = _Turn(self._id(), self._buffer_start)
            return self._maybe_partial(self._turn)
        return self._detect(audio)

    def commit(self) -> list[Event]:
        """The client ends the turn: everything buffered becomes one item."""
        if self._turn is None or self.clock <= self._turn.start:
            raise LiveInputError(
                "input_audio_buffer_commit_empty", "the input audio buffer is empty; nothing to commit"
            )
        return self._end_turn(self._turn, self.clock, stopped=False)

    def clear(self) -> list[Event]:
        """Drop buffered audio (and an open turn); the clock runs on."""
        if self._turn is not None:
            self._partials.pop(self._turn.item_id, None)
        self._turn = None
        self._silence_from = None
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = self.clock
        return [Cleared()]

    # -- VAD ----------------------------------------------------------------------------------------
    def _detect(self, audio: Samples) -> list[Event]:
        assert self.vad is not None and self.turn_detection is not None
        td = self.turn_detection
        events: list[Event] = []
        probs = self.vad.push(audio)
        # Window i of this push ends at `first_end + i * WINDOW` (absolute samples).
        first_end = self.clock - self._pending_vad_after(len(audio)) - (len(probs) - 1) * WINDOW
        neg = max(td.threshold - 0.15, 0.01)
        silence_len = SAMPLE_RATE * td.silence_duration_ms // 1000
        prefix = SAMPLE_RATE * td.prefix_padding_ms // 1000
        for i, p in enumerate(probs):
            end = first_end + i * WINDOW
            start = end - WINDOW
            if self._turn is None:
                if p >= td.threshold:
                    turn_start = max(self._buffer_start, start - prefix)
                    self._turn = _Turn(self._id(), turn_start, partial_at=start - turn_start, speech=True)
                    self._silence_from = None
                    events.append(SpeechStarted(self._turn.item_id, round(turn_start * 1000 / SAMPLE_RATE)))
                continue
            if p >= td.threshold:
                self._silence_from = None
            elif p < neg and self._silence_from is None:
                self._silence_from = start
            if self._silence_from is not None and end - self._silence_from >= silence_len:
                events += self._end_turn(self._turn, end, stopped=True, speech_end=self._silence_from)
                continue
            if end - self._turn.start >= self.limits.max_turn_s * SAMPLE_RATE:
                # One model chunk at most: commit here and go on with a new turn at once.
                events += self._end_turn(self._turn, end, stopped=True, speech_end=end)
                self._turn = _Turn(self._id(), end, speech=True)
                events.append(SpeechStarted(self._turn.item_id, round(end * 1000 / SAMPLE_RATE)))
        if self._turn is None:
            # Between turns keep only the prefix padding (bounded memory while nobody talks).
            keep = max(prefix, WINDOW)
            if len(self._buffer) > keep:
                self._buffer = self._buffer[-keep:]
                self._buffer_start = self.clock - keep
        elif self._silence_from is None or self.clock - self._silence_from < min(SPECULATE_AFTER, silence_len // 2):
            events += self._maybe_partial(self._turn)
        elif self._turn.speculated_at != self._silence_from:
            # A silence began: decode the turn now; if it lasts, that is the final transcript.
            # (While it lasts there is no new speech, so no partial decodes either.)
            self._turn.speculated_at = self._silence_from
            self._partials[self._turn.item_id] = self._turn  # its words count as a hypothesis
            audio = self._turn_audio(self._turn, self.clock).copy()
            events.append(
                DecodeRequest(self._turn.item_id, audio, self._turn.start / SAMPLE_RATE, final=False, speculative=True)
            )
        return events

    def _pending_vad_after(self, pushed: int) -> int:
        """Samples of the stream not yet scored by the VAD after this push (under one window)."""
        self._pending_vad = (self._pending_vad + pushed) % WINDOW
        return self._pending_vad

    def _turn_audio(self, turn: _Turn, end: int) -> Samples:
        return self._buffer[max(0, turn.start - self._buffer_start) : max(0, end - self._buffer_start)]

    def _maybe_partial(self, turn: _Turn) -> list[Event]:
        length = self.clock - turn.start
        interval = int(self.limits.partial_interval_s * SAMPLE_RATE)
        if turn.partial_busy or length - turn.partial_at < interval:
            return []
        turn.partial_busy = True
        turn.partial_at = length
        self._partials[turn.item_id] = turn
        audio = self._turn_audio(turn, self.clock).copy()
        return [DecodeRequest(turn.item_id, audio, turn.start / SAMPLE_RATE, final=False)]

    def _end_turn(self, turn: _Turn, end: int, stopped: bool, speech_end: int | None = None) -> list[Event]:
        events: list[Event] = []
        if stopped:
            events.append(SpeechStopped(turn.item_id, round((speech_end or end) * 1000 / SAMPLE_RATE)))
        audio = self._turn_audio(turn, end).copy()
        reuse = stopped and speech_end is not None and turn.speculated_at == speech_end
        events.append(Committed(turn.item_id, self._last_item))
        events.append(DecodeRequest(turn.item_id, audio, turn.start / SAMPLE_RATE, final=True, reuse=reuse))
        self._last_item = turn.item_id
        self._partials.pop(turn.item_id, None)
        self._finals[turn.item_id] = turn
        self._turn = None
        self._silence_from = None
        self._buffer = self._buffer[max(0, end - self._buffer_start) :]
        self._buffer_start = end
        return events

    # -- decode results -----------------------------------------------------------------------------
    def partial(self, item_id: str, words: list[Word]) -> str:
        """A partial decode's words -> the delta to send ('' for none): the words this and the
        previous one agree on (local agreement), past what was sent; what was sent is never taken back."""
        turn = self._partials.get(item_id)
        if turn is not None:
            turn.partial_busy = False
        return self.hypothesis(item_id, words)

    def hypothesis(self, item_id: str, words: list[Word]) -> str:
        """Any decode of the open turn so far (a partial one, or a speculative full one whose
        silence did not last) -> the delta to send, by the rule of :meth:`partial`."""
        turn = self._partials.get(item_id)
        if turn is None:  # committed or cleared meanwhile: the final result speaks for it
            return ""
        hypothesis = [w.word for w in words]
        # A draft that stutters ("Thanks. Thanks.") must not confirm the stutter with the next one.
        hypothesis = hypothesis[: repeated_tail(hypothesis)]
        agreed = hypothesis[: _agree(turn.previous, hypothesis)]
        turn.previous = hypothesis
        if len(agreed) <= len(turn.sent) or _agree(agreed, turn.sent) < len(turn.sent):
            return ""
        delta = join_words(agreed[len(turn.sent) :], continuing=bool(turn.sent))
        turn.sent = agreed
        return delta

    def partial_failed(self, item_id: str) -> None:
        turn = self._partials.get(item_id)
        if turn is not None:
            turn.partial_busy = False

    def final(self, item_id: str, words: list[Word], offset_s: float) -> tuple[str, list[Word]]:
        """A final decode -> (the last delta: the rest of the transcript when what was sent is a
        prefix of it, else ''; the words in session time)."""
        turn = self._finals.pop(item_id, None)
        sent = turn.sent if turn is not None else []
        hypothesis = [w.word for w in words]
        rest = hypothesis[len(sent) :] if _agree(hypothesis, sent) == len(sent) else []
        delta = join_words(rest, continuing=bool(sent))
        placed = [Word(w.word, w.start + offset_s, w.end + offset_s) for w in words]
        return delta, finalize_words(placed, ndigits=3)

    def forget(self, item_id: str) -> None:
        """A final decode failed: drop what was kept for the item."""
        self._finals.pop(item_id, None)


def transcript_text(words: list[Word]) -> str:
    return join_words([w.word for w in words])


__all__ = [
    "RATES",
    "Cleared",
    "Committed",
    "DecodeRequest",
    "LiveInputError",
    "LiveLimits",
    "LiveStream",
    "Pcm16Decoder",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetection",
    "join_words",
    "transcript_text",
]
