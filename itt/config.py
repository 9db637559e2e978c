"""Config helpers: resolvers used by conf/, and composing configs outside the Hydra app
(tests, notebooks) exactly as ``python -m itt.train`` composes them."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from itt import schema as _schema
from itt.utils import REPO_ROOT

CONF_DIR = REPO_ROOT / "conf"
log = logging.getLogger(__name__)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), from /proc/cpuinfo's
    flags. Elsewhere torch emulates bf16 matmuls and they are slower than fp32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def fast_precision() -> str:
    """``${itt.fast_precision:}``: bf16-mixed where this machine runs it natively (a CUDA GPU
    with bf16, or a CPU with AVX512-BF16 / AMX), 32-true elsewhere. The value is resolved
    before the config is hashed and written, so result.json names the precision really used."""
    try:
        import torch
        if torch.cuda.is_available():
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("itt.repo_root"):
        OmegaConf.register_new_resolver("itt.repo_root", lambda: str(REPO_ROOT))
    if not OmegaConf.has_resolver("itt.fast_precision"):
        OmegaConf.register_new_resolver("itt.fast_precision", fast_precision)


register_resolvers()
_schema.register()


def available(group: str) -> list[str]:
    """Names of the configs of a group (model, task, experiment, ...)."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the app config with Hydra's compose API (no run directory, no logging setup)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides or []),
                            return_hydra_config=False)
    return cfg


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    """The app config as plain data, resolved, without Hydra's own node."""
    if "hydra" in cfg:  # its runtime interpolations resolve only inside a running job
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data


def cell_dir(cfg: dict[str, Any]) -> Path:
    """The run directory of a cell when it runs outside Hydra (same layout as hydra.run.dir)."""
    return (Path(cfg["paths"]["output_dir"]) / "runs" / cfg["experiment_name"] / cfg["model"]["name"]
            / f"{cfg['intermediate']['name']}__{cfg['target']['name']}" / f"seed{cfg['seed']}")


def apply_card_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """Settings that task cards carry for the stages (returns a new config dict).

    * ``run.card_overrides: true`` (the xtreme_r experiment sets it): a card's
      ``train_overrides`` (per-task hyper-parameters, e.g. XTREME's lr / epochs /
      max_length per target) replace ``stage2`` keys for the target card and ``stage1``
      keys for the intermediate card; a model card's ``train_overrides`` apply to both stages.
      Change them with ``target.train_overrides.<key>=`` (``model.``, ``intermediate.``).
    * ``data.translate_train: true`` switches on the target card's ``translate_train``.
    """
    import copy

    from itt.errors import ConfigError

    cfg = copy.deepcopy(cfg)
    if cfg.get("run", {}).get("card_overrides"):
        for role, stage in (("model", "stage1"), ("model", "stage2"), ("target", "stage2"),
                            ("intermediate", "stage1")):
            over = (cfg.get(role) or {}).get("train_overrides") or {}
            unknown = sorted(k for k in over if k not in cfg[stage])
            if unknown:
                raise ConfigError(f"Task card '{cfg[role].get('name')}': train_overrides {unknown} are not "
                                  f"{stage} settings; known: {', '.join(sorted(cfg[stage]))}.")
            for key, value in over.items():
                if cfg[stage][key] != value:
                    log.info("%s.%s: %r -> %r (train_overrides of %s)", stage, key, cfg[stage][key], value,
                             cfg[role].get("name"))
                cfg[stage][key] = value
    if cfg.get("data", {}).get("translate_train"):
        block = cfg["target"]["translate_train"]
        if not isinstance(block, dict) or not block.get("source"):
            note = f" ({block['note']})" if isinstance(block, dict) and block.get("note") else ""
            raise ConfigError(f"data.translate_train=true, but target '{cfg['target'].get('name')}' has no "
                              f"translated training data{note} (no translate_train.source in its card).")
        block["enabled"] = True
    return cfg
