"""bf16 where the hardware runs it: the ${itt.fast_precision:} resolver, gradient clipping with
the fused optimizer under bf16-mixed, evaluation under the stage's precision, and the
per-process tokenizer memo a launcher worker relies on."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from itt import config as itt_config
from itt.cell import run_cell

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbogomips\t: 1\n"


def test_cpu_bf16_flag_detection():
    assert itt_config.cpu_has_bf16(FLAGS.format(extra="avx512f avx512_bf16")) is True
    assert itt_config.cpu_has_bf16(FLAGS.format(extra="amx_tile amx_bf16")) is True
    assert itt_config.cpu_has_bf16(FLAGS.format(extra="avx512f avx512_vnni")) is False
    assert itt_config.cpu_has_bf16("") is False


def test_fast_precision_resolves_before_hashing(make_cfg, monkeypatch):
    monkeypatch.setattr(itt_config, "cpu_has_bf16", lambda cpuinfo=None: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = make_cfg("trainer.precision=${itt.fast_precision:}")
    assert cfg["trainer"]["precision"] == "32-true"  # the written config names the value used
    monkeypatch.setattr(itt_config, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert make_cfg("trainer.precision=${itt.fast_precision:}")["trainer"]["precision"] == "bf16-mixed"
    # experiment=mini asks for it
    mini = itt_config.compose(["experiment=mini"])
    assert str(mini.trainer._get_node("precision")._value()) == "${itt.fast_precision:}"


def test_bf16_cell_clips_with_the_fused_optimizer(make_cfg, tmp_path):
    # Lightning's mixed-precision plugin refuses clipping with a fused optimizer; under bf16 (no
    # grad scaler) the module clips itself. A cell must train, clip and evaluate in bf16.
    cfg = make_cfg("intermediate=none", "trainer.precision=bf16-mixed", "stage2.grad_clip=0.5")
    result = run_cell(cfg, tmp_path / "cell")
    assert result["status"] == "ok"
    assert result["config"]["trainer"]["precision"] == "bf16-mixed"
    assert result["metrics"]["main"] > result["baselines"]["majority"]["main"]


def test_clipping_under_bf16_bounds_the_gradient_norm():
    import pytorch_lightning as pl
    from pytorch_lightning.plugins.precision import MixedPrecision

    from itt.models.module import ITTModule

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(8))

    module = ITTModule.__new__(ITTModule)
    pl.LightningModule.__init__(module)
    module.probe = Probe()
    module.probe.w.grad = torch.full((8,), 10.0)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, fused=True)

    class FakeTrainer:
        precision = "bf16-mixed"
        precision_plugin = MixedPrecision("bf16-mixed", "cpu")

    module._trainer = FakeTrainer()  # what Trainer.fit attaches
    module.configure_gradient_clipping(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    assert math.isclose(float(module.probe.w.grad.norm()), 1.0, rel_tol=1e-5)
    module.configure_gradient_clipping(opt, gradient_clip_val=0.01, gradient_clip_algorithm="value")
    assert float(module.probe.w.grad.abs().max()) == pytest.approx(0.01)


def test_evaluation_autocasts_to_bf16_on_cpu(monkeypatch):
    from itt import evaluation

    seen = []

    class Module(torch.nn.Module):
        class impl:  # noqa: N801 - mimics ITTModule.impl
            @staticmethod
            def predict_batch(logits, batch):
                return logits.argmax(-1).tolist()

        def forward(self, batch):
            seen.append(torch.is_autocast_enabled("cpu"))
            return torch.nn.functional.linear(batch["x"], torch.eye(2))

    class Split(list):
        pass

    def loader(split, batch_size, collator, train, shard):
        return [{"index": torch.arange(2), "x": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}]

    monkeypatch.setattr("itt.data.batching.make_loader", loader)
    split = Split([0, 1])
    assert evaluation.predict(Module(), split, None, 2, torch.device("cpu"), "bf16-mixed") == [0, 1]
    assert evaluation.predict(Module(), split, None, 2, torch.device("cpu"), "32-true") == [0, 1]
    assert seen == [True, False]


def test_tokenizer_is_loaded_once_per_process_and_again_when_its_files_change(tmp_path):
    from transformers import BertTokenizerFast

    from itt.models import encoder

    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    first = encoder.load_tokenizer(str(folder), {}, True)
    assert encoder.load_tokenizer(str(folder), {}, True) is first
    # changed in place by a caller: the next one gets a fresh tokenizer, not the changed one
    first.add_tokens(["zzqqxx"])
    fresh = encoder.load_tokenizer(str(folder), {}, True)
    assert fresh is not first and "zzqqxx" not in fresh.get_vocab()
    fresh.padding_side = "left"
    fresh2 = encoder.load_tokenizer(str(folder), {}, True)
    assert fresh2 is not fresh and fresh2.padding_side == "right"
    assert encoder.load_tokenizer(str(folder), {}, True) is fresh2
    first = fresh2
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["model_max_length"] = 77
    (folder / "tokenizer_config.json").write_text(json.dumps(config) + "\n" * 3)  # new size
    again = encoder.load_tokenizer(str(folder), {}, True)
    assert again is not first and again.model_max_length == 77
    assert Path(folder).is_dir()
