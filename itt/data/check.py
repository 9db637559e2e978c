"""Check task cards against their data: ``python -m itt.data.check [CARD ...]``.

Each card (default: every card in conf/task/) is composed as the app composes it and its
rows are loaded through the same code training uses (:func:`itt.data.loading.load_task`:
source, revision and config honoured, ``train_source`` and the split protocol applied,
rows normalised by the task type). That checks that the splits the card names exist, that
its text / label / token / answer columns exist, that every label value is one the card
lists, and that every train and eval language loads. One line per card:

* ``<card>: ok (...)`` with the split sizes;
* ``<card>: FAIL: <what is wrong and how to fix it>``;
* ``<card>: skipped: hub unreachable (<repo>)`` for a hub card when the hub cannot be
  reached (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or no connection);
* ``<card>: skipped: data not converted (<file> missing; run python -m
  itt.data.xtreme_convert <task> --source download/<task>)`` for a card that reads the
  converted files of XTREME-R's download scripts before they exist.

A hub card whose ``source.path`` is a local folder (a copy of a hub repository) is loaded,
not skipped. Exit status: 0 when no card failed, 1 when one did, 2 for an unknown card name.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from itt.errors import ITTError

log = logging.getLogger(__name__)

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"


@dataclass
class CardCheck:
    card: str
    status: str            # ok | FAIL | skipped
    detail: str

    def line(self) -> str:
        return f"{self.card}: {self.status}" + (f": {self.detail}" if self.status != OK else f" ({self.detail})")


def _hub_paths(card: Any) -> list[str]:
    """Hub repositories a card reads that are not local folders (source, train_source,
    translate-train source when enabled)."""
    from itt.data.loading import train_card, translate_train

    sources = [card.source, train_card(card).source]
    tt_card, _ = translate_train(card)
    if tt_card is not None:
        sources.append(tt_card.source)
    return [str(s["path"]) for s in sources
            if s.get("kind") == "hub" and s.get("path") and not Path(str(s["path"])).is_dir()]


def _hub_available() -> bool:
    from itt.hub import hub_offline_flag, hub_reachable

    return not hub_offline_flag() and hub_reachable()


def _missing_converted(card: Any) -> str | None:
    """The first missing converted file of a card fed by itt.data.xtreme_convert, or None."""
    from itt.data import xtreme_convert
    from itt.data.loading import train_card

    task = card.extra.get("xtreme_task")
    if task not in xtreme_convert.TASKS:
        return None
    langs = list(dict.fromkeys(list(card.train_languages) + list(card.eval_languages)))
    for source in (card.source, train_card(card).source):
        if source.get("kind") != "local":
            continue
        files = source.get("data_files") or {}
        files = files.values() if isinstance(files, dict) else [files]
        for group in files:
            for pattern in ([group] if isinstance(group, str) else list(group)):
                for lang in (langs if "{lang}" in pattern else [None]):
                    path = pattern.replace("{lang}", lang) if lang else pattern
                    if not os.path.exists(path):
                        return (f"{path} missing; run python -m itt.data.xtreme_convert {task} "
                                f"--source download/{task}")
    return None


def check_card(cfg: Any, split_seed: int = 1234, assets_dir: str | None = None) -> CardCheck:
    """Check one composed card config (``cfg.target`` of the app config, or a plain dict)."""
    from itt.data.cards import card_from_config
    from itt.data.loading import load_task
    from itt.tasks import get_task_type

    name = str(cfg.get("name", "?"))
    try:
        card = card_from_config(cfg, "target")
        assert card is not None
        hub = _hub_paths(card)
        if hub and not _hub_available():
            return CardCheck(name, SKIPPED, f"hub unreachable ({', '.join(dict.fromkeys(hub))})")
        missing = _missing_converted(card)
        if missing:
            return CardCheck(name, SKIPPED, f"data not converted ({missing})")
        data = load_task(card, get_task_type(card.type), split_seed=split_seed, assets_dir=assets_dir,
                         need_test=True)
    except ITTError as exc:
        return CardCheck(name, FAIL, str(exc))
    sizes = data.sizes
    test = sizes.get("test", {})
    detail = (f"train {sizes.get('train', 0)}, validation {sizes.get('validation', 0)}, test "
              f"{sum(test.values())} in {len(test)} language(s); split: {card.split_summary()['text']}")
    return CardCheck(name, OK, detail)


def check_cards(names: Sequence[str] | None = None, overrides: Sequence[str] = ()) -> list[CardCheck]:
    """Compose and check the named cards of conf/task/ (all of them by default)."""
    from itt.config import available, compose
    from itt.errors import ConfigError

    known = [n for n in available("task") if n != "none"]
    names = list(names or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown task card(s) {unknown}; cards in conf/task/: {', '.join(known)}")
    out = []
    for name in names:
        try:
            cfg = compose(["intermediate=none", f"target={name}", *overrides])
        except Exception as exc:  # noqa: BLE001 - a card that does not compose is a failed check
            out.append(CardCheck(name, FAIL, f"does not compose: {type(exc).__name__}: {exc}"))
            continue
        out.append(check_card(cfg.target, int(cfg.data.split_seed), str(cfg.paths.assets_dir)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m itt.data.check",
                                description="Load each task card's data through the training code and "
                                            "check splits, columns, label values and languages.")
    p.add_argument("cards", nargs="*", help="card names (default: every card in conf/task/)")
    p.add_argument("--override", action="append", default=[],
                   help="a Hydra override applied when composing (e.g. paths.data_dir=DIR); repeatable")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        results = check_cards(args.cards, args.override)
    except ITTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line(), flush=True)
    failed = [r.card for r in results if r.status == FAIL]
    skipped = [r.card for r in results if r.status == SKIPPED]
    print(f"{len(results) - len(failed) - len(skipped)} ok, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
