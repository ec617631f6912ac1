"""The Theorem 2 lab: Proposition 1 to numerical precision, the kernel limit, and what does (not) compose."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from loralab.errors import LoralabError
from loralab.theory.config import TheoryConfig
from loralab.theory.edits import (
    arrow_weights,
    balanced_factors,
    factor_merge,
    gd_lora,
    min_norm_adapter,
    prop1_update,
    weighted_sum,
)
from loralab.theory.experiments import EXPERIMENTS, Case, bridge, cot, oracle, thm2_other_entity, thm2_sum
from loralab.theory.kernel import arccos_kernel, kernel_coefficient, kernel_features
from loralab.theory.lab import one_thread, sample_multi, sample_single
from loralab.theory.model import (
    DTYPE,
    Adapter,
    Model,
    all_prompts,
    build_model,
    draw_u,
    onehot,
    random_embeddings,
    random_world,
    relu_features,
)
from tests.conftest import run_cli

N_ENT, N_REL, D = 6, 2, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """As run_lab does: thousands of tiny matrix operations run faster on one thread."""
    with one_thread():
        yield


def small_lab(seed: int, m: int = 2048) -> tuple[random.Random, Model, Model, torch.Tensor]:
    """A world of 6 entities and 2 total relations (|X||R| = 12 << d = 64): width-m model, kernel model, and
    the MLP inputs of every prompt (in `all_prompts` order)."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    world = random_world(N_ENT, N_REL, 1.0, rng)
    emb = random_embeddings(N_ENT, N_REL, D, gen)
    prompts = all_prompts(N_ENT, N_REL)
    inputs = emb.inputs(prompts)
    measured = build_model(world, prompts, relu_features(inputs, draw_u(m, D, gen)))
    return rng, measured, build_model(world, prompts, kernel_features(inputs, m, D)), inputs


def single_cases(seed: int, n: int = 5, m: int = 2048) -> tuple[Model, Model, list[Case]]:
    rng, measured, limit, _ = small_lab(seed, m)
    cases = [sample_single(measured.world, rng, library_pairs=1) for _ in range(n)]
    return measured, limit, [c for c in cases if c is not None]


def test_inputs_follow_eq_13() -> None:
    gen = torch.Generator().manual_seed(0)
    emb = random_embeddings(3, 2, 8, gen)
    e, V = emb.E, emb.V
    one, two = emb.inputs([(1, 0), (2, 0, 1)])
    assert torch.allclose(one, V @ e[1] + e[3 + 0])
    assert torch.allclose(two, V @ e[2] / 2 + V @ e[3 + 0] / 2 + e[3 + 1])


def test_base_answers_every_fact() -> None:
    _, model, limit, _ = small_lab(0)
    known = model.world.known(model.prompts)
    assert len(known) == N_ENT * N_REL * (1 + N_REL)  # total relations: every prompt has an answer
    goal = torch.stack([onehot(N_ENT, model.world.answer(p) or 0) for p in known])
    assert (model.logits(known) - goal).abs().max() < 1e-10
    assert model.base_accuracy() == limit.base_accuracy() == 1.0


def test_partial_world_and_edits() -> None:
    world = random_world(10, 3, 0.5, random.Random(1))
    assert 0 < len(world.facts) < 30
    (x, r), y = next(iter(world.facts.items()))
    edited = world.edited({(x, r): (y + 1) % 10})
    assert edited.answer((x, r)) == (y + 1) % 10 and world.answer((x, r)) == y


def test_prop1_closed_form_is_exact_and_rank_one() -> None:
    model, _, cases = single_cases(0)
    for case in cases:
        c = case.chains[0]
        dw = prop1_update(model, c.x, c.r1, c.y)
        v = model.phi([c.hop1])[0]
        after = model.logits([c.hop1])[0] + dw @ v
        assert (after - onehot(N_ENT, c.y)).abs().max() < 1e-10
        assert torch.linalg.matrix_rank(dw) == 1
        # the same as the min-norm fit of eq. (17) with one fact
        assert (min_norm_adapter(model, [c.hop1], [c.y]).delta() - dw).abs().max() < 1e-12
        # on every other prompt it adds (v . phi / |v|^2) (i_y - i_r1(x)), nothing else
        w = onehot(N_ENT, c.y) - onehot(N_ENT, model.world.answer(c.hop1) or 0)
        phi = model.features
        change = phi @ dw.T
        assert (change - (phi @ v / v.dot(v))[:, None] * w).abs().max() < 1e-12


def test_gd_lora_reaches_the_closed_form() -> None:
    model, _, cases = single_cases(0)
    c = cases[0].chains[0]
    closed = prop1_update(model, c.x, c.r1, c.y)
    rel = float((gd_lora(model, c.hop1, c.y).delta() - closed).norm() / closed.norm())
    assert rel < 1e-8  # measured 4e-10 here (2.7e-10 at the lab's defaults)
    short = float((gd_lora(model, c.hop1, c.y, steps=200).delta() - closed).norm() / closed.norm())
    assert short > 1e-3  # the comparison is sensitive: too few steps do not get there


def test_gd_lora_at_a_fixed_penalty_is_the_shrunk_closed_form() -> None:
    """At penalty lam the minimiser is (1 - lam / (|v| |w|)) times the closed form (worked out in edits.py)."""
    model, _, cases = single_cases(0)
    c = cases[0].chains[0]
    v = model.phi([c.hop1])[0]
    w = onehot(N_ENT, c.y) - model.logits([c.hop1])[0]
    lam = 0.1 * float(v.norm() * w.norm())
    trained = gd_lora(model, c.hop1, c.y, penalty_end=lam).delta()
    expected = 0.9 * prop1_update(model, c.x, c.r1, c.y)
    assert float((trained - expected).norm() / expected.norm()) < 1e-8


def test_kernel_is_the_random_features_limit() -> None:
    inputs = small_lab(0)[3]
    m = 2**16
    phi = relu_features(inputs, draw_u(m, D, torch.Generator().manual_seed(7)))
    k = arccos_kernel(inputs, inputs, D)
    assert float(((phi @ phi.T / m - k).abs() / k).max()) < 0.05  # measured 0.024
    # diagonal by hand: k(h, h) = |h|^2 / (2 d)
    assert torch.allclose(k.diagonal(), inputs.square().sum(dim=1) / (2 * D))
    feats = kernel_features(inputs, 100, D)
    assert torch.allclose(feats @ feats.T, 100 * k, atol=1e-10)


def test_kernel_predicts_thm2_coefficients_at_large_m() -> None:
    """On a fixed seed at m = 2^16 the measured a1, a2 are within a few percent of k(eta, xi) / k(eta, eta)."""
    rng, model, limit, inputs = small_lab(0, m=2**16)
    index = {p: i for i, p in enumerate(model.prompts)}
    for _ in range(5):
        case = sample_single(model.world, rng, library_pairs=0)
        assert case is not None
        c = case.chains[0]
        got, pred = thm2_sum(model, case).values, thm2_sum(limit, case).values
        for key, hop in (("a1", c.hop1), ("a2", c.hop2)):
            eq9 = kernel_coefficient(inputs[index[hop]], inputs[index[c.two_hop]], D)
            assert pred[key] == pytest.approx(eq9, abs=1e-9)
            assert abs(got[key] - pred[key]) / pred[key] < 0.04  # measured at most 0.017


def test_summed_adapters_output_a_mixture_not_the_composition() -> None:
    """Theorem 2: on X REL1 REL2 the sum adds a1 (i_y - i_r1(x)) + a2 (i_z - i_r2(y)) to the old answer; unless
    an edit removes the old answer itself, the old answer (logit 1) beats z (logit a2 < 1)."""
    clean = 0
    for seed in range(4):
        measured, limit, cases = single_cases(seed)
        for model in (measured, limit):
            for case in cases:
                c = case.chains[0]
                out = thm2_sum(model, case)
                assert out.values["residual"] < 1e-12
                assert 0 < out.values["a2"] < 1 and 0 < out.values["a1"] < 1
                if out.values["removes_old"] == 0:
                    clean += 1
                    assert out.correct == [False]
                    summed = weighted_sum(list(_pair(model, case)))
                    logits = model.logits([c.two_hop], summed)[0]
                    assert int(logits.argmax()) == model.world.answer(c.two_hop)
                    assert float(logits[c.z]) == pytest.approx(out.values["a2"], abs=1e-10)
    assert clean >= 20


def _pair(model: Model, case: Case) -> tuple[Adapter, Adapter]:
    c = case.chains[0]
    return min_norm_adapter(model, [c.hop1], [c.y]), min_norm_adapter(model, [c.hop2], [c.z])


def test_same_adapters_fire_on_another_entity() -> None:
    """App. A.1: adapter 2 fires on U REL1 REL2 about as much as on X REL1 REL2 (both through e_REL2)."""
    _, limit, cases = single_cases(0)
    for case in cases:
        on_x, on_u = thm2_sum(limit, case).values["a2"], thm2_other_entity(limit, case).values["a2"]
        assert on_u > 0.3 and abs(on_u - on_x) / on_x < 0.35


def test_oracle_and_cot_compose_bridge_does_not() -> None:
    for seed in range(3):
        model, limit, cases = single_cases(seed)
        for m in (model, limit):
            for case in cases:
                assert oracle(m, case).correct == [True]
                assert cot(m, case).correct == [True]
        rng = random.Random(100 + seed)
        for case in [sample_multi(model.world, rng, 2) for _ in range(3)]:
            if case is None:
                continue
            assert bridge(model, case).correct == [False, False]
            # why: a min-norm adapter only outputs in the span of its own edits, none of which raises z
            held, other = case.chains
            ab = min_norm_adapter(model, [other.two_hop], [other.z])
            assert float(ab.output(model.phi([held.two_hop]))[0, held.z]) <= 1e-12


def test_merges_by_hand() -> None:
    t = torch.tensor
    a1 = Adapter(t([[1.0], [0.0]], dtype=DTYPE), t([[2.0], [0.0], [0.0]], dtype=DTYPE))
    a2 = Adapter(t([[0.0], [3.0]], dtype=DTYPE), t([[0.0], [1.0], [1.0]], dtype=DTYPE))
    summed = weighted_sum([a1, a2], [1.0, 2.0]).delta()
    assert torch.equal(summed, t([[2.0, 0.0, 0.0], [0.0, 6.0, 6.0]], dtype=DTYPE))
    # (A1 + A2)(B1 + B2)^T / 4: cross terms A1 B2^T and A2 B1^T appear
    uniform = factor_merge([a1, a2], [0.5, 0.5]).delta()
    assert torch.equal(uniform, t([[0.5, 0.25, 0.25], [1.5, 0.75, 0.75]], dtype=DTYPE))
    with pytest.raises(ValueError, match="one rank"):
        factor_merge([a1, weighted_sum([a1, a2])], [0.5, 0.5])


def test_balanced_factors_and_arrow_weights() -> None:
    model, _, cases = single_cases(1)
    chains = [cases[0].chains[0], cases[1].chains[0]]
    prompts = [c.hop1 for c in chains]
    ad = min_norm_adapter(model, prompts, [c.y for c in chains])
    assert torch.allclose(ad.A.square().sum(0), ad.B.square().sum(0))  # balanced: least |A|^2 + |B|^2
    keys = model.phi(prompts)
    assert ((keys @ ad.B).sum(0) >= 0).all()  # B points along its own activations
    A, B = balanced_factors(2 * ad.A, ad.B / 2, keys)
    assert torch.allclose(A @ B.T, ad.delta()) and torch.allclose(A.abs(), ad.A.abs())
    a1, a2 = _pair(model, cases[0])
    phi = model.phi([cases[0].chains[0].two_hop])
    w = arrow_weights([a1, a2], phi[0])
    fire = [abs(float(a.coefficients(phi)[0, 0])) for a in (a1, a2)]
    assert w.tolist() == pytest.approx([f / sum(fire) for f in fire], abs=1e-12)


def test_config_errors_name_the_flag() -> None:
    with pytest.raises(LoralabError, match=r"^--d 0: must be positive"):
        TheoryConfig(d=0)
    with pytest.raises(LoralabError, match=r"^--entities 2: "):
        TheoryConfig(entities=2)
    with pytest.raises(LoralabError, match=r"^--m 100: .*\(144\)"):
        TheoryConfig(m=100)
    assert TheoryConfig(m_max=1000).sweep == (256, 512)
    # upper bounds: 256 x 2^40 was an out-of-memory traceback, a billion seeds a run of days
    with pytest.raises(
        LoralabError, match=r"^--d 256 --m-max 1099511627776: d x m-max must be at most 2\^27"
    ):
        TheoryConfig(m_max=2**40)
    with pytest.raises(LoralabError, match=r"^--d 100000000 --m 4096: "):
        TheoryConfig(d=10**8)
    with pytest.raises(LoralabError, match=r"^--seeds 1000000000: must be at most 10000"):
        TheoryConfig(seeds=10**9)
    TheoryConfig(d=2048, m=2**16, m_max=2**16)  # 2^27 exactly is allowed


def test_cli_defaults_match_the_config() -> None:
    import typer.main

    from loralab.cli import app

    group = typer.main.get_command(app)
    cmd = group.commands["theory"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in cmd.params}
    cfg = TheoryConfig()
    for name in ("d", "m", "entities", "relations", "seeds", "m_max"):
        assert defaults[name] == getattr(cfg, name), name


def test_cli_theory_writes_table_figure_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    png, out = tmp_path / "fig.png", tmp_path / "theory.json"
    args = ["theory", "--d", "32", "--m", "256", "--entities", "5", "--relations", "2", "--seeds", "2"]
    args += ["--m-max", "512", "--out", str(png), "--json", str(out)]
    assert run_cli(args, monkeypatch) == 0
    printed = capsys.readouterr().out
    assert "thm2_sum" in printed and "cot" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.read_text())
    assert data["prop1_rel_error"] < 1e-10
    assert set(data["thm2_coeff_measured"]) == set(data["thm2_coeff_predicted"]) == {"a1", "a2"}
    assert [p["m"] for p in data["thm2_sweep"]] == [256, 512]
    assert set(EXPERIMENTS) <= set(data["experiments"])
    for name, exp in data["experiments"].items():
        acc = exp["composition_accuracy"]
        assert acc is None or 0 <= acc <= 1, name
        assert "predicted_composition_accuracy" in exp
    assert data["experiments"]["oracle"]["composition_accuracy"] == 1.0
    assert data["config"]["entities"] == 5 and data["provenance"]["loralab"]
    # a file output never lands inside a folder loralab wrote (a run, an expert, a report...)
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "plan.json").write_text("{}")
    (run / "spec.json").write_text('{"name": "r"}')
    for flag, target in (("--json", run / "spec.json"), ("--out", run / "report" / "figures" / "bars.png")):
        bad = [*args[: args.index(flag)], flag, str(target), *args[args.index(flag) + 2 :]]
        assert run_cli(bad, monkeypatch) == 2
        err = capsys.readouterr().err
        assert f"{flag} {target}: inside {run}, a folder loralab wrote" in err and len(err.splitlines()) == 1
    assert (run / "spec.json").read_text() == '{"name": "r"}' and not (run / "report").exists()
    assert not math.isnan(data["thm2_coeff_measured"]["a2"])


@pytest.mark.parametrize(
    ("flags", "culprit"),
    [(["--m", "0"], "--m 0"), (["--entities", "2"], "--entities 2"), (["--d", "-1"], "--d -1")],
)
def test_cli_theory_bad_flag_is_one_line(
    flags: list[str], culprit: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["theory", *flags], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and culprit in err and "\n" not in err
