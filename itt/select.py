"""Which intermediate task? Score candidate intermediate tasks for a target before training.

    python -m itt.select target=vader_amazon candidates=vader_movie,vader_tweets,newsgroups20 model=minilm
    python -m itt.select experiment=select_mini          # the experiment grid's models x targets

Configured like ``python -m itt.train`` (conf/select.yaml composes the app's config): the
cells' data, caps and stage-1 settings are those the grid uses, so the stage-1 models come
from the grid's content-addressed cache. Writes ``selection.json`` (default: the
experiment's sweep directory, where ``python -m itt.report`` finds it) and prints a table.
Methods and their costs: itt/selection/run.py.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from itt import config as _config  # noqa: E402,F401 - registers resolvers and the app's schema
from itt.errors import ConfigError, ITTError  # noqa: E402
from itt.selection.config import use_select_schema  # noqa: E402

log = logging.getLogger("itt.select")

_GRID_GROUPS = ("model", "target")
_OWN_KEYS = ("model", "target", "intermediate", "candidates")


def sweep_values(params: dict[str, Any] | None, key: str) -> list[str] | None:
    """The values a sweep grid gives ``key`` (``hydra.sweeper.params``), or None."""
    if not params or key not in params:
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_overrides([f"{key}={params[key]}"])[0]
    return [str(v) for v in override.sweep_string_iterator()] if override.is_sweep_override() \
        else [str(override.get_value_element_as_str())]


def normalise_argv(argv: list[str]) -> list[str]:
    """``candidates=a,b`` as a list (Hydra reads a bare comma list as a sweep)."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+") == "candidates" and "," in value and not value.startswith("["):
            arg = f"{key}=[{value}]"
        out.append(arg)
    return out


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") not in _OWN_KEYS]


def _given(key: str) -> bool:
    from hydra.core.hydra_config import HydraConfig

    return any(o.split("=", 1)[0].lstrip("+~") == key for o in HydraConfig.get().overrides.task)


def _cell_cfg(overrides: list[str], model: str, target: str, intermediate: str, seed: int) -> dict[str, Any]:
    """A cell's config as the grid composes it (card settings applied, as a cell applies them)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    from itt.config import to_dict
    from itt.selection.stage1 import apply_card_settings

    cfg = compose(config_name=HydraConfig.get().job.config_name,
                  overrides=overrides + [f"model={model}", f"target={target}", f"intermediate={intermediate}",
                                         f"seed={seed}"])
    return apply_card_settings(to_dict(cfg))


def _field_cards(field: str, exclude: str) -> list[str]:
    from itt.config import CONF_DIR, available

    names = []
    for name in available("task"):
        card = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
        if name not in ("none", exclude) and card.get("field") == field and card.get("setting") == "intermediate":
            names.append(name)
    return names


def plan_questions(cfg: DictConfig) -> list[tuple[str, str, list[str]]]:
    """(model, target, candidates) to score: the command line's model / target, else the
    experiment grid's; the command line's candidates, else the grid's intermediate tasks
    (under its pairing rule), else the intermediate cards of the target's field."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    params = OmegaConf.to_container(hc.sweeper.params, resolve=False) if hc.sweeper.get("params") else None
    pairing = str(hc.sweeper.get("pairing", "same_field"))
    models = [str(cfg.model.name)] if _given("model") else (sweep_values(params, "model") or [str(cfg.model.name)])
    targets = [str(cfg.target.name)] if _given("target") else (sweep_values(params, "target") or
                                                                [str(cfg.target.name)])
    grid_inter = sweep_values(params, "intermediate")
    out = []
    for target in targets:
        field = OmegaConf.load(Path(_config.CONF_DIR) / "target" / f"{target}.yaml").get("field") \
            if (Path(_config.CONF_DIR) / "target" / f"{target}.yaml").exists() else None
        if cfg.get("candidates"):
            cands = [str(c) for c in cfg.candidates]
        elif grid_inter:
            cands = [c for c in grid_inter if c not in ("none", target)]
            if pairing != "all":
                cands = [c for c in cands if OmegaConf.load(Path(_config.CONF_DIR) / "task" / f"{c}.yaml")
                         .get("field") == field]
        else:
            cands = _field_cards(str(field), target)
        cands = list(dict.fromkeys(cands))
        unknown = [c for c in cands if not (Path(_config.CONF_DIR) / "task" / f"{c}.yaml").exists()]
        if unknown:
            import difflib

            near = {c: difflib.get_close_matches(c, _config.available("task"), n=1) for c in unknown}
            hint = "; ".join(f"'{c}' (did you mean '{n[0]}'?)" if n else f"'{c}'" for c, n in near.items())
            raise ConfigError(f"candidates: no task card {hint} in conf/task/; candidates are task card names.")
        if target in cands:
            raise ConfigError(f"candidates include the target '{target}' itself; leave it out of candidates=.")
        if not cands:
            raise ConfigError(f"No candidate intermediate tasks for target '{target}': set candidates=<card,...>.")
        out += [(m, target, cands) for m in models]
    return out


def plan_seeds(cfg: DictConfig) -> list[int]:
    """The seeds to score: the command line's ``seed=``, else every seed of the experiment's
    grid (each seed has its own stage-1 models), else the config's seed."""
    from hydra.core.hydra_config import HydraConfig

    if _given("seed"):
        return [int(cfg.seed)]
    hc = HydraConfig.get()
    params = OmegaConf.to_container(hc.sweeper.params, resolve=False) if hc.sweeper.get("params") else None
    return [int(s) for s in (sweep_values(params, "seed") or [cfg.seed])]


@hydra.main(config_path="../conf", config_name="select", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from itt.selection.records import format_table, write_selection
    from itt.selection.run import Question, Settings, select

    t_start = time.perf_counter()
    try:
        sel = cfg.select
        settings = Settings(methods=tuple(sel.methods), max_examples=int(sel.max_examples),
                            train_stage1=bool(sel.train_stage1), batch_size=int(sel.batch_size))
        overrides = _task_overrides()
        questions = []
        seeds = plan_seeds(cfg)
        overrides = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "seed"]
        for model, target, cands in plan_questions(cfg):
            for seed in seeds:
                cfgs = {c: _cell_cfg(overrides, model, target, c, seed) for c in cands}
                questions.append(Question(model=model, target=target, seed=seed, cfgs=cfgs))
        log.info("Scoring %d candidate(s) for %d (model, target, seed) group(s) with %s",
                 sum(len(q.cfgs) for q in questions), len(questions), ", ".join(settings.methods))
        from hydra.core.hydra_config import HydraConfig

        entries = select(questions, settings, Path(HydraConfig.get().runtime.output_dir))
        out = Path(str(sel.out)) if sel.out else \
            Path(str(cfg.paths.output_dir)) / "multirun" / str(cfg.experiment_name) / "selection.json"
        wall = time.perf_counter() - t_start
        write_selection(out, str(cfg.experiment_name), entries,
                        {"methods": list(settings.methods), "max_examples": settings.max_examples,
                         "train_stage1": settings.train_stage1, "seeds": seeds}, wall)
    except ITTError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(format_table(entries))
    print(f"selection.json: {out} ({wall:.1f} s)")


if __name__ == "__main__":
    sys.argv = [sys.argv[0]] + normalise_argv(sys.argv[1:])
    use_select_schema()
    main()
