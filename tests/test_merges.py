"""Merge maths worked out by hand, and loralab's methods checked against PEFT on the same adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from loralab.combination import combine, merge
from loralab.combination.lora import Lora, refactor
from loralab.combination.merges import dare_linear, dare_ties, magnitude_prune, ties
from loralab.errors import LoralabError
from loralab.models.load import load_base
from tests.conftest import make_lora_folder

IDS = torch.tensor([[3, 9, 4, 7, 11, 2]])
TARGETS = ["down_proj", "up_proj", "q_proj", "v_proj"]


def vec(*values: float) -> Lora:
    """An 'expert' whose delta is the row vector `values` (A = values, B = [[1]], scale 1)."""
    return Lora(torch.tensor([values]), torch.ones(1, 1), 1.0)


def test_ties_on_three_element_tensors_elects_the_sign_worked_out_by_hand() -> None:
    experts = [vec(3, -1, 2), vec(-2, -4, 1), vec(1, 2, -5)]
    # keep 2 of 3 by magnitude: [3, 0, 2], [-2, -4, 0], [0, 2, -5]; sums [1, -2, -3] -> signs [+, -, -]
    # disjoint means: [3], [-4], [-5]
    assert ties(experts, density=2 / 3).tolist() == [[3.0, -4.0, -5.0]]
    # weights scale the agreeing entries, not the election: [2 * 3, -4, -5]
    assert ties(experts, weights=[2, 1, 1], density=2 / 3).tolist() == [[6.0, -4.0, -5.0]]
    assert ties(experts, density=2 / 3, lam=0.5).tolist() == [[1.5, -2.0, -2.5]]
    # total vs frequency: 5, -1, -1 sums to +3 (elect +, keep 5) but counts 1 vs 2 (elect -, mean of -1, -1)
    one = [vec(5), vec(-1), vec(-1)]
    assert ties(one, density=1.0, elect="total").tolist() == [[5.0]]
    assert ties(one, density=1.0, elect="frequency").tolist() == [[-1.0]]


def test_magnitude_prune_and_dare_by_hand() -> None:
    experts = [vec(3, -1, 2), vec(-2, -4, 1)]
    # [3, 0, 2] + 0.5 * [-2, -4, 0]
    assert magnitude_prune(experts, weights=[1, 0.5], density=2 / 3).tolist() == [[2.0, -2.0, 2.0]]
    # DARE at density 1 is the identity (a plain weighted sum)
    assert dare_linear(experts, weights=[1, 0.5], density=1.0).tolist() == [[2.0, -3.0, 2.5]]
    ones = [Lora(torch.ones(1, 4000), torch.ones(1, 1), 1.0)]
    a = dare_linear(ones, density=0.5, seed=3, module="m")
    assert set(a.unique().tolist()) <= {0.0, 2.0}  # kept entries rescaled by 1 / density
    assert 0.45 < float((a > 0).float().mean()) < 0.55  # Binomial(4000, 0.5): 0.45-0.55 is > 6 sd
    assert torch.equal(a, dare_linear(ones, density=0.5, seed=3, module="m"))  # seeds reproduce
    assert not torch.equal(a, dare_linear(ones, density=0.5, seed=4, module="m"))
    assert not torch.equal(a, dare_linear(ones, density=0.5, seed=3, module="other"))  # per-module masks
    # dare_ties at density 1 is TIES without trimming: signs [+,-,+] from sums [1,-5,3]; means [3,-2.5,1.5]
    assert dare_ties(experts, density=1.0).tolist() == [[3.0, -2.5, 1.5]]


def test_refactor_is_exact_or_keeps_the_stated_energy() -> None:
    delta = torch.zeros(3, 4)
    delta[0, 0], delta[1, 1], delta[2, 3] = 3.0, 2.0, 1.0
    exact, energy = refactor(delta)
    assert exact.rank == 3 and energy == 1.0
    torch.testing.assert_close(exact.delta(), delta, atol=1e-6, rtol=0)
    top2, energy2 = refactor(delta, rank=2)
    assert top2.rank == 2 and energy2 == pytest.approx(13 / 14)  # (9 + 4) / (9 + 4 + 1)
    want = delta.clone()
    want[2, 3] = 0.0
    torch.testing.assert_close(top2.delta(), want, atol=1e-6, rtol=0)
    full, energy3 = refactor(delta, rank=3)  # the smaller side: every direction, all the energy
    assert full.rank == 3 and energy3 == pytest.approx(1.0)
    with pytest.raises(LoralabError, match=r"--opt rank=4: larger than the delta's smaller side \(3\)"):
        refactor(delta, rank=4)  # it used to return rank 3 silently


def test_rank_option_truncates_every_module(tiny_base: Path, tmp_path: Path) -> None:
    paths = [make_lora_folder(tmp_path / f"e{i}", load_base(tiny_base)[0], TARGETS, 4, i) for i in range(3)]
    exact = merge(paths, "ties", density=0.5)
    low = merge(paths, "ties", density=0.5, rank=2)
    for m in exact.modules:
        lo = low.modules[m]
        assert isinstance(lo, Lora) and lo.rank == 2
        s = torch.linalg.svdvals(exact.delta(m).double())
        assert low.energy[m] == pytest.approx(float((s[:2] ** 2).sum() / (s**2).sum()), rel=1e-6)
        assert 0 < low.energy[m] < 1


# ---------------------------------------------------------------------------
# PEFT as the peer
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peers(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("peers")
    # equal ranks (PEFT's factor-space types need them), different alphas so the scalings differ
    return [
        make_lora_folder(root / f"e{i}", load_base(tiny_base)[0], TARGETS, 4, 20 + i, 4.0 * (i + 1))
        for i in range(3)
    ]


def peft_with(base: Path, paths: list[Path]) -> Any:
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(base)[0], str(paths[0]), adapter_name="a0")
    for i, p in enumerate(paths[1:], 1):
        model.load_adapter(str(p), adapter_name=f"a{i}")
    return model


def logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def ours(base: Path, paths: list[Path], method: str, **opts: Any) -> torch.Tensor:
    return logits(combine(load_base(base)[0], paths, method, **opts))


@pytest.mark.parametrize(
    ("ours_name", "peft_type", "opts", "peft_opts"),
    [
        ("cat", "cat", {}, {}),
        ("linear_factor", "linear", {}, {}),
        ("ties_factor", "ties", {"density": 0.5}, {"density": 0.5}),
        ("ties", "ties_svd", {"density": 0.5, "rank": 16}, {"density": 0.5, "svd_rank": 16}),
        (
            "magnitude_prune",
            "magnitude_prune_svd",
            {"density": 0.3, "rank": 16},
            {"density": 0.3, "svd_rank": 16},
        ),
    ],
)
def test_merges_equal_peft_add_weighted_adapter(
    tiny_base: Path,
    peers: list[Path],
    ours_name: str,
    peft_type: str,
    opts: dict[str, Any],
    peft_opts: dict[str, Any],
) -> None:
    weights = [0.7, -0.4, 1.2]
    model = peft_with(tiny_base, peers)
    model.add_weighted_adapter(["a0", "a1", "a2"], weights, "merged", combination_type=peft_type, **peft_opts)
    model.set_adapter("merged")
    # *_svd: both truncate the same delta-space merge to its top 16 singular directions
    torch.testing.assert_close(
        ours(tiny_base, peers, ours_name, weights=weights, **opts), logits(model), atol=2e-4, rtol=2e-4
    )


def test_cat_equals_the_adapters_active_together(tiny_base: Path, peers: list[Path]) -> None:
    model = peft_with(tiny_base, peers[:2])
    model.base_model.set_adapter(["a0", "a1"])
    torch.testing.assert_close(ours(tiny_base, peers[:2], "cat"), logits(model), atol=1e-4, rtol=1e-4)


def _peft_arrow(base: Path, paths: list[Path], top_k: int, temperature: float) -> Any:
    from peft import ArrowConfig, create_arrow_model

    cfg = ArrowConfig(top_k=top_k, router_temperature=temperature, rng_seed=0)
    return create_arrow_model(load_base(base)[0], [str(p) for p in paths], cfg)


def test_arrow_power_prototypes_equal_peft_arrow(tiny_base: Path, peers: list[Path]) -> None:
    peft_model = _peft_arrow(tiny_base, peers, 2, 0.5)
    want = logits(peft_model)
    got = ours(tiny_base, peers, "arrow", top_k=2, temperature=0.5, prototype_method="power", seed=0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_arrow_exact_prototypes_equal_peft_arrow_given_the_same_prototypes(
    tiny_base: Path, peers: list[Path]
) -> None:
    from loralab.combination.arrow import prototype
    from loralab.experts.library import load_expert

    peft_model = _peft_arrow(tiny_base, peers, 2, 0.5)
    logits(peft_model)  # PEFT builds its (power-iteration) prototypes lazily on the first forward
    experts = [load_expert(p) for p in peers]
    swapped = 0
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_arrow"):
            key = name.removeprefix("base_model.model.")
            exact = torch.stack([prototype(e.A[key], e.B[key]) for e in experts])
            module.lora_arrow["arrow_router"].prototypes.copy_(exact)
            swapped += 1
    assert swapped == 2 * len(TARGETS)
    got = ours(tiny_base, peers, "arrow", top_k=2, temperature=0.5)
    torch.testing.assert_close(got, logits(peft_model), atol=1e-5, rtol=1e-5)


def test_blockwise_ties_equals_a_whole_tensor_reference() -> None:
    from loralab.combination.merges import BLOCK_ELEMENTS, magnitude_threshold

    gen = torch.Generator().manual_seed(5)
    rows = 2 * BLOCK_ELEMENTS // 40 + 88  # three row blocks of 40 columns
    experts = [
        Lora(torch.randn(3, 40, generator=gen), torch.randn(rows, 3, generator=gen), 0.5) for _ in range(3)
    ]
    deltas = [e.delta() for e in experts]
    weights, density = [1.0, 0.5, 2.0], 0.3
    k = int(density * rows * 40)
    trimmed = []
    for d in deltas:  # the textbook steps on whole tensors
        kth = d.abs().flatten().kthvalue(d.numel() - k + 1).values
        trimmed.append(torch.where(d.abs() >= kth, d, torch.zeros(())))
        # the radix select finds the same threshold, as float32 bits
        bits = magnitude_threshold(lambda e, r, d=d: d[r].clone(), 0, (rows, 40), density)
        assert (
            bits is not None
            and torch.tensor([bits], dtype=torch.int32).view(torch.float32).item() == kth.item()
        )
    stack = torch.stack(trimmed)
    sign = torch.where(stack.sum(0) >= 0, 1.0, -1.0)
    agree = stack.sign() == sign
    w = torch.tensor(weights)[:, None, None]
    want = (stack * w * agree).sum(0) / agree.sum(0).clamp(min=1)
    torch.testing.assert_close(ties(experts, weights=weights, density=density), want, atol=1e-6, rtol=1e-6)


def test_magnitude_threshold_with_ties_keeps_every_tied_entry() -> None:
    from loralab.combination.merges import keep_top_magnitude, magnitude_threshold

    t = torch.tensor([[1.0, -3.0, 2.0, 3.0], [2.0, -2.0, 0.5, 1.0]])
    # top 3 of 8 by magnitude: 3, 3, then a tie of three 2's: the threshold is 2 and all 2's stay
    bits = magnitude_threshold(lambda e, r: t[r].clone(), 0, (2, 4), 3 / 8)
    kept = keep_top_magnitude(t.clone(), bits)
    assert kept.tolist() == [[0.0, -3.0, 2.0, 3.0], [2.0, -2.0, 0.0, 0.0]]


def test_arrow_with_genknowsub_equals_peft(tiny_base: Path, peers: list[Path], tmp_path: Path) -> None:
    from peft import ArrowConfig, create_arrow_model

    general = [
        make_lora_folder(tmp_path / f"g{i}", load_base(tiny_base)[0], TARGETS, 4, 40 + i) for i in range(2)
    ]
    cfg = ArrowConfig(top_k=2, router_temperature=0.5, rng_seed=0, use_gks=True)
    peft_model = create_arrow_model(
        load_base(tiny_base)[0], [str(p) for p in peers], cfg, general_adapter_paths=[str(g) for g in general]
    )
    opts = {"top_k": 2, "temperature": 0.5, "prototype_method": "power", "seed": 0}
    got = ours(tiny_base, peers, "arrow", general=",".join(map(str, general)), **opts)
    torch.testing.assert_close(got, logits(peft_model), atol=1e-5, rtol=1e-5)
    # and subtracting the general experts changes the result
    assert (got - ours(tiny_base, peers, "arrow", **opts)).abs().max() > 1e-3
