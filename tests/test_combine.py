from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from loralab.combine import METHODS, ArrowLinear, combine
from loralab.combine.arrow import prototype
from loralab.errors import LoralabError
from loralab.experts.library import load_expert
from loralab.models.load import load_base

MODULE = "model.layers.0.mlp.down_proj"  # test base: in 64, out 32


def hand_adapter(path: Path, tensors: dict[str, tuple[torch.Tensor, torch.Tensor]], alpha: float) -> Path:
    """Write a PEFT LoRA folder by hand: module -> (A, B)."""
    path.mkdir(parents=True)
    r = next(iter(tensors.values()))[0].shape[0]
    (path / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": r,
                "lora_alpha": alpha,
                "task_type": "CAUSAL_LM",
                "target_modules": sorted({m.rsplit(".", 1)[1] for m in tensors}),
            }
        )
    )
    flat = {}
    for m, (a, b) in tensors.items():
        flat[f"base_model.model.{m}.lora_A.weight"] = a.contiguous()
        flat[f"base_model.model.{m}.lora_B.weight"] = b.contiguous()
    save_file(flat, str(path / "adapter_model.safetensors"))
    return path


def unit(n: int, i: int, value: float = 1.0) -> torch.Tensor:
    v = torch.zeros(n)
    v[i] = value
    return v


def test_uniform_of_two_hand_made_deltas_is_their_mean(tiny_base: Path, tmp_path: Path) -> None:
    # delta1 = (alpha/r) B1 A1 = 2 * E[0,0]; delta2 = 2 * 3 * E[0,1]; mean: [0,0] = 1, [0,1] = 3
    e1 = hand_adapter(tmp_path / "e1", {MODULE: (unit(64, 0)[None], unit(32, 0)[:, None])}, alpha=2)
    e2 = hand_adapter(tmp_path / "e2", {MODULE: (unit(64, 1)[None], unit(32, 0, 3.0)[:, None])}, alpha=2)
    model, _ = load_base(tiny_base)
    before = model.get_submodule(MODULE).weight.detach().clone()
    combine(model, [e1, e2], "uniform")
    diff = model.get_submodule(MODULE).weight.detach() - before
    expected = torch.zeros(32, 64)
    expected[0, 0], expected[0, 1] = 1.0, 3.0
    torch.testing.assert_close(diff, expected, atol=1e-6, rtol=0)


def test_prototype_is_the_top_right_singular_vector() -> None:
    gen = torch.Generator().manual_seed(0)
    A, B = torch.randn(4, 20, generator=gen), torch.randn(12, 4, generator=gen)
    p = prototype(A, B)
    v = torch.linalg.svd((B @ A).double())[2][0].float()
    assert abs(float(p @ v)) == pytest.approx(1.0, abs=1e-5)
    # rank-one B A = b a^T: the prototype is a / |a|
    a, b = torch.tensor([[3.0, 0.0, 4.0]]), torch.tensor([[1.0], [2.0]])
    assert abs(prototype(a, b)).tolist() == pytest.approx([0.6, 0.0, 0.8], abs=1e-6)


def test_arrow_top1_routes_an_aligned_token_to_that_expert() -> None:
    base = torch.nn.Linear(4, 2, bias=False)
    torch.nn.init.zeros_(base.weight)
    # expert 0 writes to output 0 from input 0; expert 1 to output 1 from input 1; s = 2
    A = torch.stack([unit(4, 0)[None], unit(4, 1)[None]])
    B = torch.stack([unit(2, 0)[:, None], unit(2, 1)[:, None]])
    protos = torch.stack([unit(4, 0), unit(4, 1)])
    layer = ArrowLinear(base, A, B, torch.tensor([2.0, 2.0]), protos, top_k=1, temperature=1.0)
    x = torch.tensor([[5.0, 0.1, 0.0, 0.0], [0.2, -3.0, 0.0, 0.0]])
    y = layer(x)
    # token 0 -> expert 0 only: 2 * 5 at output 0; token 1 -> expert 1 only (|-3| wins): 2 * -3 at output 1
    torch.testing.assert_close(y, torch.tensor([[10.0, 0.0], [0.0, -6.0]]))
    assert layer.last_coefficients is not None
    assert layer.last_coefficients.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_arrow_output_equals_the_explicit_sum() -> None:
    gen = torch.Generator().manual_seed(1)
    d_in, d_out, n_exp, r = 10, 6, 3, 2
    base = torch.nn.Linear(d_in, d_out)
    A = torch.randn(n_exp, r, d_in, generator=gen)
    B = torch.randn(n_exp, d_out, r, generator=gen)
    scaling = torch.tensor([0.5, 2.0, 1.5])
    protos = torch.stack([prototype(A[e], B[e]) for e in range(n_exp)])
    layer = ArrowLinear(base, A, B, scaling, protos, top_k=2, temperature=0.7)
    x = torch.randn(2, 5, d_in, generator=gen)
    expected = base(x).detach().clone()
    for i in range(2):
        for t in range(5):
            xt = x[i, t]
            scores = torch.tensor([abs(float(xt @ protos[e])) for e in range(n_exp)])
            keep = scores.argsort(descending=True)[:2]
            w = torch.softmax(scores[keep] / 0.7, dim=0)
            for c, e in zip(w, keep.tolist(), strict=True):
                expected[i, t] += c * scaling[e] * (B[e] @ (A[e] @ xt))
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_arrow_on_a_model_with_unequal_ranks_matches_single_expert_when_top1(
    tiny_base: Path, tmp_path: Path
) -> None:
    gen = torch.Generator().manual_seed(2)
    e1 = hand_adapter(
        tmp_path / "e1", {MODULE: (torch.randn(2, 64, generator=gen), torch.randn(32, 2, generator=gen))}, 4
    )
    e2 = hand_adapter(
        tmp_path / "e2", {MODULE: (torch.randn(4, 64, generator=gen), torch.randn(32, 4, generator=gen))}, 4
    )
    model, _ = load_base(tiny_base)
    combine(model, [e1, e2], "arrow", top_k=2)
    layer = model.get_submodule(MODULE)
    assert isinstance(layer, ArrowLinear) and layer.rank == 4
    x = torch.randn(3, 64, generator=gen)
    x1, x2 = load_expert(e1), load_expert(e2)
    c = layer.coefficients(x)
    want = layer.base(x) + c[:, :1] * (x @ x1.delta(MODULE).T) + c[:, 1:] * (x @ x2.delta(MODULE).T)
    torch.testing.assert_close(layer(x), want, atol=1e-4, rtol=1e-4)


def test_every_method_changes_the_model_and_keeps_generate_working(tiny_base: Path, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    paths = [
        hand_adapter(
            tmp_path / f"e{i}",
            {MODULE: (torch.randn(2, 64, generator=gen), torch.randn(32, 2, generator=gen))},
            4,
        )
        for i in range(2)
    ]
    ids = torch.tensor([[5, 6, 7, 8]])
    for name in METHODS:
        model, tok = load_base(tiny_base)
        before = model(ids).logits
        combine(model, paths, name)
        after = model(ids).logits
        assert (after - before).abs().max() > 1e-4, name
        out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
        assert out.shape == (1, 7), name


def test_bad_combinations_fail_with_one_line(tiny_base: Path, tmp_path: Path) -> None:
    ok = hand_adapter(tmp_path / "ok", {MODULE: (torch.ones(1, 64), torch.ones(32, 1))}, 1)
    other = hand_adapter(
        tmp_path / "other", {"model.layers.0.mlp.up_proj": (torch.ones(1, 32), torch.ones(64, 1))}, 1
    )
    wrong = hand_adapter(tmp_path / "wrong", {MODULE: (torch.ones(1, 48), torch.ones(32, 1))}, 1)
    model, _ = load_base(tiny_base)
    with pytest.raises(LoralabError, match="unknown; choose one of"):
        combine(model, [ok], "nope")
    with pytest.raises(LoralabError, match=r"--opt top_q: method arrow takes top_k, temperature"):
        combine(model, [ok], "arrow", top_q=1)
    with pytest.raises(LoralabError, match="targets other modules"):
        combine(model, [ok, other], "uniform")
    with pytest.raises(LoralabError, match="another base"):
        combine(model, [wrong], "uniform")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    with pytest.raises(LoralabError, match=r"adapter_config\.json: not valid JSON"):
        load_expert(tmp_path / "broken")
    (tmp_path / "ok" / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(LoralabError, match=r"adapter_model\.safetensors: cannot read"):
        load_expert(tmp_path / "ok")
    (tmp_path / "ok" / "adapter_model.safetensors").unlink()
    with pytest.raises(LoralabError, match=r"adapter_model\.safetensors: file not found"):
        load_expert(tmp_path / "ok")
