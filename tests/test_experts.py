from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from loralab.combination import combine
from loralab.experts.library import list_library, load_expert
from loralab.experts.train import bucketed_batches, encode, resolve_targets
from loralab.models.load import load_base


def test_loss_mask_covers_the_prompt_only(tiny_base: Path) -> None:
    _, tok = load_base(tiny_base)
    rows = [{"prompt": "Who is Marie Curie married to?", "answer": "Marie Curie is married to Zint."}]
    ((ids, labels),) = encode(tok, rows, 512, "x.jsonl")
    n_answer = len(tok("Marie Curie is married to Zint.<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert len(ids) == len(labels)
    assert labels.count(-100) == len(ids) - n_answer
    assert labels[-n_answer:] == ids[-n_answer:]


def test_length_buckets_cover_every_example_once() -> None:
    examples = [([0] * n, [0] * n) for n in (5, 3, 9, 3, 7, 5, 1)]
    batches = bucketed_batches(examples, 3, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(7))
    assert [len(b) for b in sorted(batches, key=len)] == [1, 3, 3]
    for b in batches:  # within a batch, lengths are neighbours in sorted order
        lengths = sorted(len(examples[i][0]) for i in b)
        assert lengths[-1] - lengths[0] <= 4


def test_target_modules_resolve_to_the_architectures_names(tiny_base: Path) -> None:
    model, _ = load_base(tiny_base)
    assert resolve_targets(model, "mlp") == ["gate_proj", "up_proj", "down_proj"]
    assert resolve_targets(model, "attention") == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_expert_is_a_peft_adapter_with_meta(trained_expert: Path, tiny_base: Path) -> None:
    from peft import PeftModel

    meta = json.loads((trained_expert / "meta.json").read_text())
    assert (
        meta["kind"] == "expert"
        and meta["lr"] == 3e-3
        and meta["config"]["epochs"] == 1
        and meta["examples"] == 54
    )
    assert meta["target_modules"] == ["gate_proj", "up_proj", "down_proj"]
    model, _ = load_base(tiny_base)
    peft_model = PeftModel.from_pretrained(model, trained_expert)
    ids = torch.tensor([[3, 10, 20, 30, 40]])
    with torch.no_grad():
        via_peft = peft_model(ids).logits
    merged, _ = load_base(tiny_base)
    combine(merged, [trained_expert], "uniform")  # the mean of one delta is the expert itself
    with torch.no_grad():
        via_merge = merged(ids).logits
    torch.testing.assert_close(via_peft, via_merge, atol=1e-4, rtol=1e-4)
    expert = load_expert(trained_expert)
    assert expert.r == 4 and expert.scaling == 8.0 and len(expert.modules) == 2 * 3
    assert any(float(expert.B[m].abs().max()) > 0 for m in expert.modules)  # training moved B off zero


def test_library_index_lists_experts(trained_expert: Path) -> None:
    entries = list_library(trained_expert.parent)
    assert [e["name"] for e in entries] == ["A-B"]
    assert entries[0]["r"] == 4 and entries[0]["examples"] == 54


PUBLIC = {
    "combine": "loralab.combination",
    "METHODS": "loralab.combination",
    "train_expert": "loralab.experts.train",
    "ExpertConfig": "loralab.experts.config",
    "load_expert": "loralab.experts.library",
    "evaluate": "loralab.evaluation",
    "load_base": "loralab.models.load",
    "build_twohop": "loralab.worlds.twohop",
    "build_setup": "loralab.worlds.setups",
    "SETUPS": "loralab.worlds.setups",
    "build_graph": "loralab.worlds.graph",
    "validate_dataset": "loralab.worlds.validate",
    "quickstart": "loralab.experiments.quickstart",
    "LoralabError": "loralab.errors",
}


def test_public_api_names_are_the_documented_objects() -> None:
    """Every public name is the very object its module defines (the README's list), and the version is
    pyproject's."""
    import importlib

    import tomllib

    import loralab

    assert sorted(loralab.__all__) == sorted([*PUBLIC, "__version__"])
    for name, module in PUBLIC.items():
        assert getattr(loralab, name) is getattr(importlib.import_module(module), name), name
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert loralab.__version__ == pyproject["project"]["version"]


def test_fast_dropout_drops_the_right_fraction_and_keeps_the_mean() -> None:
    from loralab.experts.dropout import FastDropout

    torch.manual_seed(0)
    drop = FastDropout(0.25)  # exactly representable: threshold 16384 / 65536
    y = drop(torch.ones(400, 1000))
    frac = float((y == 0).float().mean())
    # 400k Bernoulli(0.25) draws: standard error 0.0007
    assert abs(frac - 0.25) < 0.004
    assert torch.unique(y).tolist() == pytest.approx([0.0, 4.0 / 3.0])
    assert abs(float(y.mean()) - 1.0) < 0.006
    drop.eval()
    x = torch.randn(3, 5)
    assert torch.equal(drop(x), x)
    assert FastDropout(0.05).p == 3277 / 65536


def test_padded_batch_loss_equals_the_plain_per_example_loss(tiny_base: Path) -> None:
    """The training loop's fast path (length buckets padded into one batch) optimises the same objective as
    a plain loop over unpadded examples: the batch loss is the token-weighted mean of the per-example losses
    (fp32, 1e-5 relative), with a LoRA whose B is non-zero so the adapter takes part."""
    from loralab.experts.config import ExpertConfig
    from loralab.experts.train import attach_lora, collate

    model, tok = load_base(tiny_base)
    rows = [
        {"prompt": "Who is Marie Curie married to?", "answer": "Marie Curie is married to Zint."},
        {"prompt": "Where was Ada born?", "answer": "Ada was born in Lond."},
        {"prompt": "Name the city of birth of Alan Turing, please.", "answer": "It is Maida Vale, London."},
    ]
    examples = encode(tok, rows, 512, "x.jsonl")
    assert len({len(x) for x, _ in examples}) == 3  # three lengths: the batch needs padding
    pm = attach_lora(model, ExpertConfig(r=4, alpha=8, dropout=0.0))
    torch.manual_seed(0)
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    pm.eval()
    device = torch.device("cpu")
    with torch.no_grad():
        batch = pm(**collate(examples, [0, 1, 2], tok.pad_token_id, device)).loss.item()
        total, count = 0.0, 0
        for i, (_, y) in enumerate(examples):
            one = collate(examples, [i], tok.pad_token_id, device)
            n = sum(1 for t in y[1:] if t != -100)  # labels shift by one inside the model
            total += pm(**one).loss.item() * n
            count += n
    assert batch == pytest.approx(total / count, rel=1e-5)


def test_a_diverging_run_writes_no_expert(tmp_path: Path) -> None:
    """A loss that turns NaN stops training with one error before anything is written; non-finite or absurd
    learning rates are refused by the config itself."""
    from types import SimpleNamespace

    from pydantic import ValidationError

    from loralab.errors import LoralabError
    from loralab.experts.config import ExpertConfig
    from loralab.experts.train import _fit

    class Diverging(torch.nn.Module):
        """A finite loss at the first step, NaN from the second on (what a far too large step gives)."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, **batch: torch.Tensor) -> SimpleNamespace:
            self.calls += 1
            scale = 1.0 if self.calls == 1 else float("nan")
            return SimpleNamespace(loss=(self.w * batch["input_ids"].float().mean()) ** 2 * scale)

    examples = [([1, 2, 3], [-100, 2, 3]), ([4, 5], [-100, 5])]
    cfg = ExpertConfig(lr=1e-3, epochs=3, batch_size=1)
    tokenizer = SimpleNamespace(pad_token_id=0)
    with pytest.raises(LoralabError, match=r"training diverged at step 2 \(loss nan\); lower --lr"):
        _fit(Diverging(), tokenizer, examples, cfg)
    for bad in (float("inf"), float("nan"), 1e30, 0.0):
        with pytest.raises(ValidationError):
            ExpertConfig(lr=bad)
