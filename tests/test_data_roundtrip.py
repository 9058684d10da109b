"""Convert -> mix -> export -> TRL dataset -> one SFT step on the tiny model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from unireward.data.export import ExportConfig, export_file, load_trl_dataset
from unireward.data.mix import MixConfig, mix

_spec = importlib.util.spec_from_file_location("materialize", Path(__file__).parent / "fixtures/sources/materialize.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)  # type: ignore[union-attr]


def test_convert_mix_export_sft_step(tmp_path, tiny_model):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer

    _mod.materialize("imagegen_cot", tmp_path / "raw/cot")
    _mod.materialize("hpd", tmp_path / "raw/hpd")
    conf = {"seed": 1, "sources": [
        {"name": "cot", "converter": "imagegen-cot-5k", "input": "raw/cot", "sampling": "all"},
        {"name": "hpd", "converter": "hpd", "input": "raw/hpd", "sampling": "first:2"},
    ]}  # fmt: skip
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(conf))
    rep = mix(MixConfig.from_yaml(tmp_path / "mix.yaml"), tmp_path / "train.jsonl")
    assert rep.per_source == {"cot": {"available": 3, "selected": 3}, "hpd": {"available": 3, "selected": 2}}

    export_file(tmp_path / "train.jsonl", tmp_path / "trl", ExportConfig(format="trl", trl_kinds=("sft",)))
    ds = load_trl_dataset(tmp_path / "trl" / "sft.jsonl")
    assert len(ds) == 5 and ds[0]["images"][0].size == (56, 56)  # decoded through List(Image())

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "visual" not in n}
    args = SFTConfig(
        output_dir=str(tmp_path / "run"), max_length=None, max_steps=1, per_device_train_batch_size=2,
        learning_rate=1e-2, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, dataloader_num_workers=0,
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0
    changed = any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)
    assert changed
