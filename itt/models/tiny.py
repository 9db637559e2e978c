"""Tiny offline stand-ins for the paper's encoders.

Same architecture as the real model (BERT, RoBERTa, XLNet, ...), a small config, random
weights and a tokenizer of the architecture's kind (WordPiece, byte-level BPE, Unigram)
trained on local text. Built once per (config, corpus) and cached; a file lock keeps
parallel workers from building the same one twice.
"""
from __future__ import annotations

import glob
import json
import logging
from pathlib import Path
from typing import Any, Sequence

from itt.errors import ConfigError
from itt.utils import atomic_write_json, build_once, file_sha256, publish_dir, stable_hash

log = logging.getLogger(__name__)

_SPECIALS = {
    "bert": dict(unk="[UNK]", pad="[PAD]", cls="[CLS]", sep="[SEP]", mask="[MASK]"),
    "roberta": dict(unk="<unk>", pad="<pad>", cls="<s>", sep="</s>", mask="<mask>"),
    "xlnet": dict(unk="<unk>", pad="<pad>", cls="<cls>", sep="<sep>", mask="<mask>"),
}
_SPECIALS["xlm-roberta"] = _SPECIALS["roberta"]
ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "xlnet")


def _corpus(spec: list[str]) -> tuple[list[str], list[Any]]:
    """Lines of text for the tokenizer, and what identifies them for the cache key."""
    from itt.data import smoke

    lines: list[str] = []
    ident: list[Any] = []
    for item in spec:
        if item == "smoke":
            lines += smoke.corpus_lines()
            ident.append("smoke")
            continue
        files = sorted(glob.glob(str(item)))
        if not files:
            raise ConfigError(f"model.tiny.corpus entry {item!r} matches no file.")
        for f in files:
            ident.append([f, file_sha256(f)])
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    if f.endswith(".jsonl"):
                        row = json.loads(line)
                        lines += [str(v) for k, v in row.items() if k.startswith("text") and v]
                    else:
                        lines.append(line)
    return lines, ident


def _train_tokenizer(arch: str, lines: list[str], vocab_size: int):
    """A ``tokenizers.Tokenizer`` of the architecture's kind trained on ``lines``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    sp = _SPECIALS[arch]
    specials = [sp["pad"], sp["unk"], sp["cls"], sp["sep"], sp["mask"]]
    if arch == "bert":
        tok = Tokenizer(models.WordPiece(unk_token=sp["unk"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    elif arch in ("roberta", "xlm-roberta"):
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:  # xlnet: SentencePiece-style Unigram
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=sp["unk"])
    tok.train_from_iterator(lines, trainer=trainer)
    cls_id, sep_id = tok.token_to_id(sp["cls"]), tok.token_to_id(sp["sep"])
    if arch == "bert":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['cls']} $A {sp['sep']}", pair=f"{sp['cls']} $A {sp['sep']} $B:1 {sp['sep']}:1",
            special_tokens=[(sp["cls"], cls_id), (sp["sep"], sep_id)])
    elif arch in ("roberta", "xlm-roberta"):
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['cls']} $A {sp['sep']}", pair=f"{sp['cls']} $A {sp['sep']} {sp['sep']} $B {sp['sep']}",
            special_tokens=[(sp["cls"], cls_id), (sp["sep"], sep_id)])
    else:  # XLNet puts <sep> <cls> at the end; segment ids 0/1 and 2 for <cls>
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {sp['sep']} {sp['cls']}:2", pair=f"$A {sp['sep']} $B:1 {sp['sep']}:1 {sp['cls']}:2",
            special_tokens=[(sp["cls"], cls_id), (sp["sep"], sep_id)])
    return tok


def _fast_tokenizer(tok: Any, arch: str, model_max_length: int, padding_side: str):
    """``tok`` as a transformers fast tokenizer with the architecture's special tokens."""
    from transformers import PreTrainedTokenizerFast

    sp = _SPECIALS[arch]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=sp["unk"], pad_token=sp["pad"], cls_token=sp["cls"],
        sep_token=sp["sep"], mask_token=sp["mask"],
        bos_token=sp["cls"] if arch != "bert" else None, eos_token=sp["sep"] if arch != "bert" else None,
        padding_side=padding_side, model_max_length=int(model_max_length))


def train_tokenizer(documents: Sequence[str], architecture: str, vocab_size: int, model_max_length: int,
                    padding_side: str = "right"):
    """A fast tokenizer of the architecture's kind (WordPiece for BERT, byte-level BPE for
    RoBERTa, Unigram for XLNet) trained on ``documents``. The tiny models' tokenizers and
    the pretraining tokenizer (:mod:`itt.pretraining`) are both made here."""
    tok = _train_tokenizer(architecture, list(documents), int(vocab_size))
    return _fast_tokenizer(tok, architecture, model_max_length, padding_side)


def _model_config(arch: str, tiny: dict[str, Any], vocab_size: int, pad_id: int):
    from transformers import BertConfig, RobertaConfig, XLMRobertaConfig, XLNetConfig

    h, n, heads, ff = tiny["hidden_size"], tiny["num_layers"], tiny["num_heads"], tiny["intermediate_size"]
    if arch == "bert":
        return BertConfig(vocab_size=vocab_size, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                          intermediate_size=ff, max_position_embeddings=tiny.get("max_position_embeddings", 512),
                          pad_token_id=pad_id)
    if arch in ("roberta", "xlm-roberta"):
        cls = RobertaConfig if arch == "roberta" else XLMRobertaConfig
        return cls(vocab_size=vocab_size, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                   intermediate_size=ff, max_position_embeddings=tiny.get("max_position_embeddings", 512) + 2,
                   pad_token_id=pad_id, bos_token_id=2, eos_token_id=3, type_vocab_size=1)
    return XLNetConfig(vocab_size=vocab_size, d_model=h, n_layer=n, n_head=heads, d_inner=ff,
                       pad_token_id=pad_id)


def build_tiny(model_cfg: dict[str, Any], cache_dir: str | Path) -> Path:
    """Return the directory of the tiny model described by ``model_cfg`` (building it once)."""
    arch = model_cfg["architecture"]
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model.architecture '{arch}' cannot be built tiny; known: {ARCHITECTURES}.")
    tiny = dict(model_cfg["tiny"])
    spec = list(tiny.get("corpus") or ["smoke"])
    lines, ident = _corpus(spec)
    key = stable_hash([arch, {k: v for k, v in tiny.items() if k != "corpus"}, ident, 2])
    out = Path(cache_dir) / "models" / f"{model_cfg['name']}-{key}"

    def fill(tmp: Path) -> None:
        import torch
        from transformers import AutoModel

        log.info("Building %s (arch %s) in %s", model_cfg["name"], arch, out)
        tok = _train_tokenizer(arch, lines, int(tiny.get("vocab_size", 2000)))
        hf_tok = _fast_tokenizer(tok, arch, int(tiny.get("max_position_embeddings", 512)),
                                 padding_side="left" if arch == "xlnet" else "right")
        config = _model_config(arch, tiny, tok.get_vocab_size(), tok.token_to_id(_SPECIALS[arch]["pad"]))
        torch.manual_seed(int(tiny.get("seed", 0)))
        AutoModel.from_config(config).save_pretrained(tmp)
        hf_tok.save_pretrained(tmp)
        atomic_write_json(tmp / "itt_tiny.json", {"model": model_cfg["name"], "corpus": ident})

    return build_once(out, lambda: publish_dir(out, fill), lambda p: (p / "config.json").exists())
