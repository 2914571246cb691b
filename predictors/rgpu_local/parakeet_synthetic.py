"""Random-weight FastConformer-TDT models built from a config (no Parakeet weights exist offline).

Tests and benchmarks use these to run the exact production loading path
(``ASRModel.restore_from`` on a ``.nemo`` file) and NeMo's real ``transcribe(timestamps=True)``:
the architecture, tokenizer, preprocessing, TDT greedy decoding and timestamp computation are
NeMo's own; only the weights are untrained, so the text is meaningless.

``tiny`` builds in seconds on CPU; ``small`` is FastConformer-Small (~14 M parameters); ``full`` has
parakeet-tdt-0.6b-v2's shape (FastConformer XL,
24 layers, d_model 1024, 128 mel features, 1024-token vocabulary, ~0.6 B parameters) for
throughput measurements on a GPU.
"""

from __future__ import annotations

import logging
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Bump when the architecture or tokenizer recipe changes (cache key for built files).
VERSION = "2"

_SENTENCES = [
    "hello everyone and welcome to the weekly meeting",
    "today we will talk about the roadmap for the next quarter",
    "the transcription service runs on a kubernetes cluster with gpus",
    "please share your screen so that we can see the numbers",
    "i think we should ship the feature before the end of the month",
    "can you hear me now the audio was cutting out a moment ago",
    "thank you all for joining let us meet again next week",
    "the quick brown fox jumps over the lazy dog",
    "speaker diarization tells us who spoke when in a recording",
    "we measured the word error rate on three different data sets",
]


@dataclass(frozen=True)
class Preset:
    features: int
    d_model: int
    n_layers: int
    n_heads: int
    conv_kernel: int
    sub_channels: int
    pred_hidden: int
    pred_layers: int
    joint_hidden: int
    vocab: int


PRESETS: dict[str, Preset] = {
    # A few hundred thousand parameters: builds and decodes in well under a second on CPU.
    "tiny": Preset(80, 64, 2, 4, 9, 32, 64, 1, 64, 128),
    # FastConformer "Small" (~14 M parameters): CPU benchmarks where the model, not the server, dominates.
    "small": Preset(80, 176, 16, 4, 9, 176, 320, 1, 320, 256),
    # parakeet-tdt-0.6b-v2's published architecture.
    "full": Preset(128, 1024, 24, 8, 9, 256, 640, 2, 640, 1024),
}


def train_tokenizer(out_dir: Path, vocab_size: int, sentences: list[str] | None = None) -> Path:
    """A SentencePiece BPE tokenizer trained on a few sentences (``out_dir/tokenizer.model``)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "corpus.txt"
    lines = list(sentences or _SENTENCES)
    rng = random.Random(0)
    # Enough distinct text for the requested vocabulary: shuffled word n-grams and the letters.
    words = " ".join(lines).split()
    for _ in range(vocab_size * 4):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))))
    corpus.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        num_threads=1,
        minloglevel=2,
    )
    # vocab.txt as NeMo's tokenizer script writes it (word-initial pieces bare, others "##").
    pieces = [line.split("\t")[0] for line in (out_dir / "tokenizer.vocab").read_text().splitlines()]
    vocab = [p[1:] if p.startswith("\u2581") else "##" + p for p in pieces if p]
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return out_dir / "tokenizer.model"


def model_config(tokenizer_dir: Path, preset: str = "tiny") -> dict:
    p = PRESETS[preset]
    durations = [0, 1, 2, 3, 4]
    return {
        "sample_rate": 16000,
        "compute_eval_loss": False,
        "log_prediction": False,
        "skip_nan_grad": False,
        "model_defaults": {
            "enc_hidden": p.d_model,
            "pred_hidden": p.pred_hidden,
            "joint_hidden": p.joint_hidden,
            "tdt_durations": durations,
            "num_tdt_durations": len(durations),
        },
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        # As in a released .nemo: transcribing file paths builds its loader from validation_ds.
        **{
            ds: {
                "manifest_filepath": None,
                "sample_rate": 16000,
                "batch_size": 4,
                "shuffle": ds == "train_ds",
                "use_start_end_token": False,
                "num_workers": 0,
                "pin_memory": False,
            }
            for ds in ("train_ds", "validation_ds", "test_ds")
        },
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": p.features,
            "n_fft": 512,
            "frame_splicing": 1,
            "dither": 0.0,
            "pad_to": 0,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": p.features,
            "feat_out": -1,
            "n_layers": p.n_layers,
            "d_model": p.d_model,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": p.sub_channels,
            "causal_downsampling": False,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": p.n_heads,
            "att_context_size": [-1, -1],
            "att_context_style": "regular",
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 5000,
            "conv_kernel_size": p.conv_kernel,
            "conv_norm_type": "batch_norm",
            "conv_context_size": None,
            "dropout": 0.1,
            "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0,
            "dropout_att": 0.1,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "prednet": {
                "pred_hidden": p.pred_hidden,
                "pred_rnn_layers": p.pred_layers,
                "t_max": None,
                "dropout": 0.2,
            },
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": False,
            "fused_batch_size": 4,
            "jointnet": {"joint_hidden": p.joint_hidden, "activation": "relu", "dropout": 0.2},
            "num_extra_outputs": len(durations),
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": durations,
            "greedy": {"max_symbols": 10},
        },
        "loss": {
            "loss_name": "tdt",
            "tdt_kwargs": {"fastemit_lambda": 0.0, "clamp": -1.0, "durations": durations, "sigma": 0.05, "omega": 0.1},
        },
        "optim": {"name": "adamw", "lr": 1e-3},
    }


def build_tdt_nemo(out_path: Path | str, preset: str = "tiny", seed: int = 0) -> Path:
    """Build a random-weight FastConformer-TDT and ``save_to`` a ``.nemo`` file at ``out_path``."""
    import torch

    from rgpu_asr.torchaudio_compat import import_torchaudio

    import_torchaudio()  # NeMo imports torchaudio; see rgpu_serving.torchaudio_compat
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="tdt-tok-") as tmp:
        train_tokenizer(Path(tmp), PRESETS[preset].vocab)
        cfg = OmegaConf.create(model_config(Path(tmp), preset))
        model = EncDecRNNTBPEModel(cfg=cfg)
        _make_it_talk(model)
        partial = out_path.with_name(out_path.name + ".partial")
        model.save_to(str(partial))
    partial.replace(out_path)
    logging.getLogger("rgpu.parakeet").info("built %s FastConformer-TDT at %s", preset, out_path)
    return out_path


def _make_it_talk(model) -> None:
    """Bias an untrained joint so greedy TDT decoding emits short words and advances frames.

    With random weights blank and the durations compete evenly, so a decode is often empty or
    one endless token run; nudging the output bias (word-initial pieces up, duration 0 down,
    durations 2-3 up) makes every decode produce several words with timestamps, so the
    structure of the real output can be checked. The weights stay random.
    """
    import torch

    out = model.joint.joint_net[-1]
    n_durations = model.joint.num_extra_outputs
    blank = out.bias.shape[0] - n_durations - 1
    pieces = [model.tokenizer.ids_to_tokens([i])[0] for i in range(blank)]
    word_start = torch.tensor([p.startswith("\u2581") for p in pieces])
    with torch.no_grad():
        out.bias.zero_()
        out.bias[:blank][word_start] += 1.0
        out.bias[blank + 1 :] = torch.tensor([-3.0, 0.0, 1.0, 3.0, 2.0][:n_durations])
