"""Tiny, randomly initialised translation models with locally trained tokenizers.

No translation weights can be had offline, so the tests build real Marian, NLLB and M2M100
models from small configs, with SentencePiece / BPE tokenizers trained here on a generated
corpus, and ``save_pretrained`` them; the service then loads them through its production path
(``AutoTokenizer`` / ``AutoModelForSeq2SeqLM.from_pretrained``). Outputs are meaningless; shapes,
code mapping, batching and splitting are real. Built once into ``<repo>/.cache`` keyed by VERSION.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

VERSION = "tiny-translators-v1"
WORDS = (
    "the meeting starts now we talk about budget team project deadline client report today tomorrow "
    "la réunion commence maintenant nous parlons du budget équipe projet client rapport demain "
    "hello everyone welcome to reflector transcription translation speaker audio sentence question answer "
    "yes no maybe thanks goodbye number one two three four five six seven eight nine ten"
).split()


def corpus(n: int = 3000, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ","]))
    return lines


def _small(config_cls, vocab_size: int, **kw):
    return config_cls(
        vocab_size=vocab_size,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=512,
        **kw,
    )


def _spm(path: Path, vocab_size: int, **kw) -> None:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        vocab_size=vocab_size,
        character_coverage=1.0,
        minloglevel=2,
        **kw,
    )
    path.write_bytes(model.getvalue())


def build_marian(out: Path) -> None:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        _spm(t / "source.spm", 160, unk_id=1, bos_id=-1, eos_id=0, pad_id=-1)
        shutil.copyfile(t / "source.spm", t / "target.spm")
        sp = spm.SentencePieceProcessor(model_file=str(t / "source.spm"))
        vocab = {"</s>": 0, "<unk>": 1}
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
        vocab["<pad>"] = len(vocab)
        (t / "vocab.json").write_text(json.dumps(vocab))
        tok = MarianTokenizer(str(t / "source.spm"), str(t / "target.spm"), str(t / "vocab.json"))
        tok.save_pretrained(out)
    torch.manual_seed(0)
    pad = vocab["<pad>"]
    config = _small(MarianConfig, len(vocab), pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad)
    MarianMTModel(config).save_pretrained(out)


def build_nllb(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    tok = NllbTokenizer(vocab=state["vocab"], merges=merges)
    tok.save_pretrained(out)
    torch.manual_seed(0)
    config = _small(M2M100Config, len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    M2M100ForConditionalGeneration(config).save_pretrained(out)


def build_m2m100(out: Path) -> None:
    import sentencepiece as spm
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        _spm(t / "sentencepiece.bpe.model", 160, model_type="bpe")
        sp = spm.SentencePieceProcessor(model_file=str(t / "sentencepiece.bpe.model"))
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        for i in range(sp.get_piece_size()):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
        (t / "vocab.json").write_text(json.dumps(vocab))
        tok = M2M100Tokenizer(str(t / "vocab.json"), str(t / "sentencepiece.bpe.model"))
        tok.save_pretrained(out)
    torch.manual_seed(0)
    vocab_size = max(tok.lang_code_to_id.values()) + 1 + tok.num_madeup_words  # language tokens follow the vocab
    config = _small(M2M100Config, vocab_size, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    M2M100ForConditionalGeneration(config).save_pretrained(out)


BUILDERS = {
    "opus-mt-en-fr": build_marian,
    "opus-mt-fr-en": build_marian,
    "nllb": build_nllb,
    "m2m100": build_m2m100,
}


def model_root(cache: Path) -> Path:
    """``cache/<VERSION>/`` holding every tiny model (built on first use, atomically)."""
    root = cache / VERSION
    for name, build in BUILDERS.items():
        target = root / name
        if (target / "config.json").is_file():
            continue
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            build(tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


if __name__ == "__main__":
    import sys

    print(model_root(Path(sys.argv[1])))
