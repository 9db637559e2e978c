"""Pretrain the tiny code / text encoders of the code-versus-text study (masked LM, CPU).

    python -m itt.pretrain                                # tiny_code and tiny_text, into the cache
    python -m itt.pretrain --models tiny_text             # one card
    python -m itt.pretrain model.pretrain.tokens=100000   # Hydra overrides, applied to each card
    python -m itt.pretrain --count                        # token counts under the budget, no training
    python -m itt.pretrain --models tiny_code --out DIR   # into DIR instead of the cache

Without ``--out`` the models land where a cell finds them (``paths.cache_dir``), so running
this first only moves the pretraining out of the first cell of ``experiment=code_vs_text_mini``.
Python API: :func:`itt.pretraining.pretrain` (``pretrain(model_cfg, corpus, out_dir,
token_budget, ...)``) and :func:`itt.pretraining.build.build_pretrained` (a model card).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from itt.errors import ITTError  # noqa: E402
from itt.pretraining import pretrain  # noqa: E402,F401 - the API, re-exported

log = logging.getLogger("itt.pretrain")

PAIR = ("tiny_code", "tiny_text")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m itt.pretrain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="Hydra overrides for each card, e.g. model.pretrain.tokens=100000")
    p.add_argument("--models", default=",".join(PAIR), help="comma-separated model cards (default: %(default)s)")
    p.add_argument("--out", default=None, help="build into this directory (one card only) instead of the cache")
    p.add_argument("--count", action="store_true",
                   help="tokenize each card's corpus to its budget and print the counts; no training")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return p


def card(name: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved model card ``name`` (with paths) as the training app composes it."""
    from itt.config import compose, to_dict

    cfg = to_dict(compose([f"model={name}", *overrides]))
    if not cfg["model"].get("pretrain"):
        raise ITTError(f"Model card '{name}' has no pretrain block (only cards like tiny_code / tiny_text do).")
    return cfg


def count(cfg: dict[str, Any]) -> dict[str, Any]:
    """Token counts of the card's corpus cut to its budget (trains only the shared tokenizer)."""
    from transformers import AutoTokenizer

    from itt.pretraining.build import model_dir, shared_tokenizer
    from itt.pretraining.mlm import tokenize_budget

    _, spec, corpora = model_dir(cfg["model"], cfg["paths"]["cache_dir"])
    tok = AutoTokenizer.from_pretrained(str(shared_tokenizer(spec, corpora, cfg["paths"]["cache_dir"])))
    blocks = tokenize_budget(corpora[spec["corpus"]], tok, int(spec["tokens"]), int(spec["held_out_tokens"]),
                             int(spec["max_length"]), int(spec["seed"]))
    return {"model": cfg["model"]["name"], "corpus": spec["corpus"], "train_tokens": blocks.train_tokens,
            "held_out_tokens": blocks.held_out_tokens, "train_blocks": len(blocks.train),
            "train_documents": blocks.train_documents}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if args.out and len(names) != 1:
        print("error: --out takes one card (--models NAME)", file=sys.stderr)
        return 2
    try:
        from itt.pretraining.build import build_pretrained
        from itt.pretraining.mlm import read_summary

        for name in names:
            cfg = card(name, args.overrides)
            if args.count:
                c = count(cfg)
                print(f"{c['model']:<12} corpus={c['corpus']:<5} train_tokens={c['train_tokens']} "
                      f"held_out_tokens={c['held_out_tokens']} blocks={c['train_blocks']} "
                      f"documents={c['train_documents']}")
                continue
            path = build_pretrained(cfg["model"], cfg["paths"]["cache_dir"], args.out)
            s = read_summary(path)
            loss = s["held_out_loss"]
            print(f"{name:<12} corpus={s['corpus']['name']:<5} train_tokens={s['tokens']['train']} "
                  f"steps={s['settings']['steps']} held-out MLM loss {loss['before']:.3f} -> {loss['after']:.3f} "
                  f"({s['wall_time_s']['total']:.0f}s when built)  {path}")
    except ITTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
