"""Resemblyzer's pretrained speaker encoder as a pyannote.audio embedding model.

Resemblyzer (Apache-2.0) ships a real GE2E speaker encoder (3-layer LSTM over 40-band mel
power spectrograms of 1.6 s windows, 256-dimensional L2-normalised embeddings) in its PyPI
package (``resemblyzer/pretrained.pt``). Wrapped here as a ``pyannote.audio.Model``, saved as a
pyannote checkpoint, it plugs into pyannote's ``SpeakerDiarization`` pipeline as the
``embedding`` of a pipeline directory and is loaded by pyannote's own ``Model.from_pretrained``.

pyannote calls ``model(waveforms, weights=masks)`` with 10 s chunks and, per chunk and local
speaker, a frame mask of where that speaker talks. The encoder embeds only those frames: the
masked mel frames are cut into 1.6 s partials (Resemblyzer's ``embed_utterance``: step
1/1.3 s, last partial kept when it is at least 75 % covered) and the partial embeddings are
averaged and normalised, as Resemblyzer does. The volume normalisation of Resemblyzer's
preprocessing (-30 dBFS, increase only) is applied to the speaker's samples; its silence trimming
is what the mask does.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path

import numpy as np

# pyannote imports torchaudio at module level: whoever imports this module has installed the
# torchaudio shim first (the entry points do; pyannote imports it by class path while the diarizer
# loads the packaged checkpoint, after rgpu_diarizer.pyannote_compat.prepare_pyannote()).
import torch
import torch.nn.functional as F
from pyannote.audio.core.model import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from torch import nn

INT16_MAX = 2**15 - 1


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr, n_fft, n_mels)`` (Slaney scale and area normalisation): (n_mels, 1 + n_fft // 2)."""
    fftfreqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


class ResemblyzerEmbedding(Model):
    """Resemblyzer's GE2E voice encoder behind pyannote's embedding-model interface."""

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        mel_n_channels: int = 40,
        mel_window_ms: float = 25.0,
        mel_step_ms: float = 10.0,
        hidden_size: int = 256,
        num_layers: int = 3,
        embedding_size: int = 256,
        partial_frames: int = 160,
        partial_rate: float = 1.3,
        min_coverage: float = 0.75,
        target_dbfs: float = -30.0,
        min_speech_s: float = 0.5,
        task=None,
    ):
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        self.save_hyperparameters(
            "mel_n_channels",
            "mel_window_ms",
            "mel_step_ms",
            "hidden_size",
            "num_layers",
            "embedding_size",
            "partial_frames",
            "partial_rate",
            "min_coverage",
            "target_dbfs",
            "min_speech_s",
        )
        self.n_fft = int(sample_rate * mel_window_ms / 1000)
        self.hop = int(sample_rate * mel_step_ms / 1000)
        self.lstm = nn.LSTM(mel_n_channels, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_size)
        self.relu = nn.ReLU()
        fb = slaney_mel_filterbank(sample_rate, self.n_fft, mel_n_channels)
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    # ---- pyannote's embedding-model interface ---------------------------------------------
    @property
    def dimension(self) -> int:
        return self.hparams.embedding_size

    @cached_property
    def partial_step(self) -> int:
        """Frames between two partials (Resemblyzer's ``rate`` partials per second)."""
        return max(1, int(round(self.hparams.sample_rate / self.hparams.partial_rate / self.hop)))

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop

    def receptive_field_size(self, num_frames: int = 1) -> int:
        return self.n_fft + (num_frames - 1) * self.hop

    def receptive_field_center(self, frame: int = 0) -> int:
        return frame * self.hop

    # ---- computation -----------------------------------------------------------------------
    def mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, mel_n_channels) mel *power* spectrogram (not log)."""
        spec = torch.stft(
            waveforms,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        return torch.matmul(self.mel_fb, power).transpose(1, 2)

    def embed_partials(self, partials: torch.Tensor) -> torch.Tensor:
        """(n, partial_frames, mel) -> (n, embedding_size), ReLU'd and L2-normalised."""
        _, (hidden, _) = self.lstm(partials)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-12)

    def _partials(self, frames: torch.Tensor) -> torch.Tensor:
        """Cut (n, mel) frames into (k, partial_frames, mel) windows as ``embed_utterance`` does."""
        size, step = self.hparams.partial_frames, self.partial_step
        n = frames.shape[0]
        starts = list(range(0, max(1, n - size + step + 1), step))
        last = starts[-1]
        if len(starts) > 1 and (n - last) / size < self.hparams.min_coverage:
            starts = starts[:-1]
        need = starts[-1] + size
        if need > n:
            frames = F.pad(frames, (0, 0, 0, need - n))
        return torch.stack([frames[s : s + size] for s in starts])

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, 1, samples) [+ (batch, frames) weights] -> (batch, embedding_size).

        An item with less than ``min_speech_s`` of weighted speech gets a NaN embedding, which
        pyannote's clustering leaves out.
        """
        batch, _, num_samples = waveforms.shape
        if num_samples < self.hparams.min_speech_s * self.hparams.sample_rate:
            # pyannote probes the shortest input a model takes (``min_num_samples``) this way
            raise ValueError(f"at least {self.hparams.min_speech_s} s of audio is needed for a speaker embedding")
        x = waveforms[:, 0].float()
        if weights is None:
            sample_mask = torch.ones_like(x, dtype=torch.bool)
        else:
            w = weights.float().reshape(batch, 1, -1)
            sample_mask = F.interpolate(w, size=num_samples, mode="nearest")[:, 0] > 0.5
        # Resemblyzer's preprocessing: raise the speaker's speech to -30 dBFS (never lower it).
        energy = (x.square() * sample_mask).sum(dim=1) / sample_mask.sum(dim=1).clamp_min(1)
        dbfs = 10 * torch.log10((energy * INT16_MAX**2).clamp_min(1e-10) / INT16_MAX**2)
        gain = torch.where(dbfs < self.hparams.target_dbfs, 10 ** ((self.hparams.target_dbfs - dbfs) / 20), 1.0)
        mels = self.mel(x) * gain.square()[:, None, None]
        num_mel_frames = mels.shape[1]
        frame_mask = F.interpolate(sample_mask[:, None].float(), size=num_mel_frames, mode="nearest")[:, 0] > 0.5
        min_frames = int(self.hparams.min_speech_s * 1000 / self.hparams.mel_step_ms)

        pieces, owners = [], []
        for b in range(batch):
            frames = mels[b][frame_mask[b]]
            if frames.shape[0] < max(1, min_frames):
                continue
            p = self._partials(frames)
            pieces.append(p)
            owners += [b] * p.shape[0]
        out = torch.full((batch, self.dimension), float("nan"), device=waveforms.device)
        if not pieces:
            return out
        partial_embeds = self.embed_partials(torch.cat(pieces))
        index = torch.tensor(owners, device=waveforms.device)
        sums = torch.zeros((batch, self.dimension), device=waveforms.device).index_add_(0, index, partial_embeds)
        present = torch.unique(index)
        mean = sums[present]
        out[present] = mean / torch.norm(mean, dim=1, keepdim=True).clamp_min(1e-12)
        return out

    # ---- building the checkpoint ---------------------------------------------------------
    @classmethod
    def from_resemblyzer(cls, weights_path: str | Path) -> ResemblyzerEmbedding:
        """Build from Resemblyzer's ``pretrained.pt`` (``{"model_state": ...}``)."""
        state = torch.load(str(weights_path), map_location="cpu", weights_only=True)["model_state"]
        model = cls()
        own = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        model.load_state_dict(own, strict=True)
        model.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=10.0, min_duration=0.5
        )
        model.eval()
        return model

    def save_pyannote_checkpoint(self, path: str | Path) -> None:
        """Write a checkpoint that ``pyannote.audio.Model.from_pretrained`` loads."""
        import lightning

        checkpoint = {
            "state_dict": self.state_dict(),
            "hyper_parameters": dict(self.hparams),
            "pytorch-lightning_version": lightning.__version__,
            "epoch": 0,
            "global_step": 0,
        }
        self.on_save_checkpoint(checkpoint)
        torch.save(checkpoint, str(path))
