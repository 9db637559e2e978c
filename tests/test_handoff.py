"""Stage 2 starts from the stage-1 encoder (not the pretrained one) with a fresh head."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

import itt.stages as stages
from itt import stage1_cache
from itt.cell import run_cell
from itt.models.encoder import load_encoder


def _capture(monkeypatch) -> list[dict]:
    """Record encoder and head weights at the moment each stage starts training."""
    seen: list[dict] = []
    original = stages.fit

    def spy(module, *args, **kwargs):
        seen.append({"encoder": {k: v.detach().clone() for k, v in module.encoder.state_dict().items()},
                     "head": {k: v.detach().clone() for k, v in module.head.state_dict().items()},
                     "stage": kwargs["stage_cfg"]})
        return original(module, *args, **kwargs)

    monkeypatch.setattr(stages, "fit", spy)
    return seen


def test_target_stage_starts_from_stage1_encoder_with_fresh_head(make_cfg, tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    cfg = make_cfg("seed=3")
    result = run_cell(cfg, tmp_path / "itt")
    assert len(seen) == 2, "stage 1 and stage 2 both trained"
    stage1_dir = stage1_cache.stage1_dir(cfg["paths"]["cache_dir"], result["stage1"]["key"])
    stage1_encoder = load_file(str(stage1_dir / stage1_cache.ENCODER_FILE))
    stage1_head = load_file(str(stage1_dir / stage1_cache.HEAD_FILE))
    pretrained, _, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    pre = pretrained.state_dict()
    start2 = seen[1]
    differs_from_pretrained = 0
    for name, tensor in stage1_encoder.items():
        assert torch.equal(start2["encoder"][name], tensor), f"{name} not taken from stage 1"
        differs_from_pretrained += not torch.equal(tensor, pre[name])
    assert differs_from_pretrained > len(stage1_encoder) // 2, "stage 1 changed the encoder"
    for name, tensor in stage1_head.items():
        assert not torch.equal(start2["head"][name], tensor), f"head {name} carried over from stage 1"

    # Fresh = exactly what a baseline cell (no intermediate training) starts its head from.
    seen.clear()
    run_cell(make_cfg("seed=3", "intermediate=none"), tmp_path / "baseline")
    baseline_start = seen[0]
    for name, tensor in baseline_start["head"].items():
        assert torch.equal(start2["head"][name], tensor)
    for name, tensor in pre.items():
        assert torch.equal(baseline_start["encoder"][name], tensor), "baseline starts from pretrained"


def test_freezing_keeps_frozen_weights(make_cfg, tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    cfg = make_cfg("intermediate=none", "stage2.freeze_embeddings=true", "stage2.freeze_layers=1")
    run_cell(cfg, tmp_path / "frozen")
    start = seen[0]["encoder"]
    # After training, read the trained encoder back through a second spy-free run is costly;
    # instead check requires_grad on a fresh module built the same way.
    from itt.builders import build_module as _module
    from itt.data.cards import card_from_config

    enc, _, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    module = _module(enc, card_from_config(cfg["target"], "target"), cfg, "stage2")
    frozen = {n for n, p in module.encoder.named_parameters() if not p.requires_grad}
    assert any(n.startswith("embeddings.") for n in frozen)
    assert any(n.startswith("encoder.layer.0.") for n in frozen)
    assert not any(n.startswith("encoder.layer.1.") for n in frozen)
    assert start, "the cell trained"
