"""The typed schema: every bad key or value stops the run before any work, with one line
naming the file (or the command line), the key and the nearest valid key, and exit code 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from itt.cli_errors import explain
from itt.config import compose, to_dict
from itt.errors import ConfigError
from itt.schema import ITTConfig, check_ranges, nearest

REPO = Path(__file__).resolve().parent.parent
SMOKE = ["experiment=smoke", "logger=none"]


def _error_line(overrides: list[str], config_dir: Path | None = None) -> str:
    """The one-line message composing (and checking) these overrides ends with."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        if config_dir is None:
            cfg = compose(SMOKE + overrides)
            check_ranges(to_dict(cfg))
        else:
            with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
                # --config-dir as the CLI has it: an extra search-path entry
                cfg = hydra_compose("config", overrides=SMOKE + overrides +
                                    [f"hydra.searchpath=[file://{config_dir}]"], return_hydra_config=True)
                check_ranges(to_dict(cfg), dict(cfg.hydra.runtime.choices))
    except Exception as exc:  # noqa: BLE001 - the test inspects what the user would see
        line = explain(exc)
        assert line is not None, f"no one-line message for {type(exc).__name__}: {exc}"
        assert "\n" not in line
        return line
    raise AssertionError(f"{overrides} composed without error")


@pytest.mark.parametrize("override, expected", [
    ("stage1.lerning_rate=1e-4", "unknown key 'stage1.lerning_rate' (did you mean 'stage1.lr'?)"),
    ("trainer.precison=16", "did you mean 'trainer.precision'?"),
    ("+stage2.epoch=3", "did you mean 'stage2.epochs'?"),
    ("stage2.lr=abc", "stage2.lr='abc' is not a valid float"),
    ("seed=abc", "seed='abc' is not a valid integer"),
    ("seed=-1", "seed must be a whole number >= 0"),
    ("stage1.lr=0", "stage1.lr must be positive"),
    ("stage2.batch_size=0", "stage2.batch_size must be positive"),
    ("data.batching=foo", "data.batching='foo' is not one of length_grouped, random, sorted"),
    ("data.batching=randm", "did you mean 'random'?"),
    ("model=tiny_brt", "unknown model 'tiny_brt' (model=tiny_brt): no conf/model/tiny_brt.yaml; did you mean 'tiny_bert'?"),
    ("target=smoke_prodcts", "did you mean 'smoke_products'?"),
    ("hydra/launcher=itt_lokal", "unknown hydra/launcher 'itt_lokal' (hydra/launcher=itt_lokal): no "
                                 "conf/hydra/launcher/itt_lokal.yaml; did you mean 'itt_local'?"),
])
def test_bad_override_gets_one_line(override, expected):
    assert expected in _error_line([override])


def _conf_dir(tmp_path: Path) -> Path:
    root = tmp_path / "conf"
    for group in ("experiment", "task", "model"):
        (root / group).mkdir(parents=True)
    (root / "experiment" / "typo.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny_bert\nstage1:\n  lerning_rate: 1.0e-4\n")
    card = (REPO / "conf" / "task" / "smoke_products.yaml").read_text()
    (root / "task" / "typo_card.yaml").write_text(
        card.replace("name: smoke_products", "name: typo_card").replace("eval_languages:", "eval_languge:"))
    (root / "task" / "copied.yaml").write_text(card)   # its name still says smoke_products
    return root


def test_mistyped_key_in_files_names_the_file(tmp_path):
    root = _conf_dir(tmp_path)
    # intermediate and target read conf/task through symlinks; a search-path dir needs both
    for group in ("intermediate", "target"):
        (root / group).symlink_to(root / "task")
    line = _error_line(["experiment=typo"], root)
    assert line.startswith("conf/experiment/typo.yaml: unknown key 'stage1.lerning_rate'") and "'stage1.lr'" in line
    line = _error_line(["target=typo_card"], root)
    assert "typo_card.yaml: unknown key 'target.eval_languge' (did you mean 'target.eval_languages'?)" in line
    line = _error_line(["target=copied"], root)
    assert "copied.yaml: name is 'smoke_products'" in line and "set name: copied" in line


def test_every_shipped_card_and_experiment_fits_the_schema():
    from itt.config import available

    for name in available("model"):
        check_ranges(to_dict(compose(SMOKE + [f"model={name}"])))
    for name in available("task"):
        if name != "none":
            compose(SMOKE + [f"target={name}", f"intermediate={name}"])
    for name in available("experiment"):
        compose([f"experiment={name}"])


def test_defaults_live_in_the_schema_only():
    """conf/ sets what differs from the schema's defaults; it does not repeat a stage block."""
    import yaml

    top = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())
    assert not {"stage1", "stage2", "data", "run", "eval", "head"} & set(top)
    cfg = to_dict(compose(["logger=none"]))
    assert cfg["stage1"]["lr"] == ITTConfig().stage1.lr and cfg["trainer"]["progress_bar_refresh_rate"] == 10


def test_nearest_key():
    assert nearest("lerning_rate", ["lr", "epochs", "warmup_ratio"]) == "lr"
    assert nearest("batchsize", ["batch_size", "eval_batch_size"]) == "batch_size"
    assert nearest("zzz", ["lr"]) is None


def test_max_length_above_encoder_positions_is_a_config_error(make_cfg, tmp_path):
    from itt.cell import run_cell

    cfg = make_cfg("intermediate=none", "stage2.max_length=100000")
    with pytest.raises(ConfigError, match=r"stage2.max_length=100000 is more than model 'tiny_bert' takes"):
        run_cell(cfg, tmp_path / "run")


@pytest.mark.slow
def test_cli_exit_code_2_and_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "ITT_OUTPUT_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled"}
    for args in (["stage1.lerning_rate=1"], ["seed=-1"], ["-m", "experiment=smoke", "data.batching=foo"]):
        proc = subprocess.run([sys.executable, "-m", "itt.train", *args, "logger=none"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [ln for ln in proc.stderr.strip().splitlines() if "[HYDRA]" not in ln]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("**/result.json")) and not list(tmp_path.glob("**/error.json"))
