"""Combination methods: the routed module, Arrow, and one shared suite over the whole registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from loralab.artifacts import read_json
from loralab.combination import METHODS, RoutedLinear, combine, export_adapter, merge
from loralab.combination.arrow import power_prototype, prototype
from loralab.combination.routed import ArrowRouter, FixedRouter
from loralab.errors import LoralabError
from loralab.experts.library import load_expert
from loralab.models.load import load_base

MODULE = "model.layers.0.mlp.down_proj"  # test base: in 64, out 32
UP = "model.layers.1.mlp.up_proj"  # in 32, out 64


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


def random_adapter(path: Path, seed: int, r: int = 2, alpha: float = 4.0) -> Path:
    gen = torch.Generator().manual_seed(seed)
    shapes = {MODULE: (64, 32), UP: (32, 64)}
    return hand_adapter(
        path,
        {
            m: (torch.randn(r, i, generator=gen), torch.randn(o, r, generator=gen) / 4)
            for m, (i, o) in shapes.items()
        },
        alpha,
    )


def unit(n: int, i: int, value: float = 1.0) -> torch.Tensor:
    v = torch.zeros(n)
    v[i] = value
    return v


IDS = torch.tensor([[5, 6, 7, 8, 9]])


def logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


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
    # power iteration converges to the same direction (up to sign)
    assert abs(float(power_prototype(A, B, iters=200) @ v)) == pytest.approx(1.0, abs=1e-4)
    # rank-one B A = b a^T: the prototype is a / |a|
    a, b = torch.tensor([[3.0, 0.0, 4.0]]), torch.tensor([[1.0], [2.0]])
    assert abs(prototype(a, b)).tolist() == pytest.approx([0.6, 0.0, 0.8], abs=1e-6)


def arrow_layer(
    base: torch.nn.Linear, A: Any, B: Any, s: Any, protos: Any, k: int, t: float, mix: Any = "output"
):
    return RoutedLinear(base, A, B, s, ArrowRouter(protos, k, t), mix)


def test_arrow_top1_routes_an_aligned_token_to_that_expert() -> None:
    base = torch.nn.Linear(4, 2, bias=False)
    torch.nn.init.zeros_(base.weight)
    # expert 0 writes to output 0 from input 0; expert 1 to output 1 from input 1; s = 2
    A = torch.stack([unit(4, 0)[None], unit(4, 1)[None]])
    B = torch.stack([unit(2, 0)[:, None], unit(2, 1)[:, None]])
    protos = torch.stack([unit(4, 0), unit(4, 1)])
    layer = arrow_layer(base, A, B, torch.tensor([2.0, 2.0]), protos, 1, 1.0)
    x = torch.tensor([[5.0, 0.1, 0.0, 0.0], [0.2, -3.0, 0.0, 0.0]])
    y = layer(x)
    # token 0 -> expert 0 only: 2 * 5 at output 0; token 1 -> expert 1 only (|-3| wins): 2 * -3 at output 1
    torch.testing.assert_close(y, torch.tensor([[10.0, 0.0], [0.0, -6.0]]))
    assert layer.last_coefficients is not None
    assert layer.last_coefficients.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def explicit_arrow(x: Any, A: Any, B: Any, s: Any, protos: Any, k: int, t: float, mix: str) -> torch.Tensor:
    """Per token, the formula written out: scores, top-k softmax, then the output or parameter mixture."""
    out = torch.zeros(*x.shape[:-1], B.shape[1])
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            xt = x[i, j]
            scores = torch.tensor([abs(float(xt @ protos[e])) for e in range(len(A))])
            keep = scores.argsort(descending=True)[:k]
            c = torch.zeros(len(A))
            c[keep] = torch.softmax(scores[keep] / t, dim=0)
            if mix == "output":
                out[i, j] = sum(c[e] * s[e] * (B[e] @ (A[e] @ xt)) for e in range(len(A)))
            else:
                a_mix = sum(c[e] * s[e] * A[e] for e in range(len(A)))
                b_mix = sum(c[e] * B[e] for e in range(len(A)))
                out[i, j] = b_mix @ (a_mix @ xt)
    return out


@pytest.mark.parametrize("mix", ["output", "params"])
def test_routed_output_equals_the_explicit_formula(mix: str) -> None:
    gen = torch.Generator().manual_seed(1)
    d_in, d_out, n_exp, r = 10, 6, 3, 2
    base = torch.nn.Linear(d_in, d_out)
    A = torch.randn(n_exp, r, d_in, generator=gen)
    B = torch.randn(n_exp, d_out, r, generator=gen)
    scaling = torch.tensor([0.5, 2.0, 1.5])
    protos = torch.stack([prototype(A[e], B[e]) for e in range(n_exp)])
    layer = arrow_layer(base, A, B, scaling, protos, 2, 0.7, mix)
    x = torch.randn(2, 5, d_in, generator=gen)
    expected = base(x).detach() + explicit_arrow(x, A, B, scaling, protos, 2, 0.7, mix)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_arrow_on_a_model_with_unequal_ranks_matches_the_explicit_sum(
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
    assert isinstance(layer, RoutedLinear) and layer.rank == 4
    x = torch.randn(3, 64, generator=gen)
    x1, x2 = load_expert(e1), load_expert(e2)
    c = layer.coefficients(x)
    want = layer.base(x) + c[:, :1] * (x @ x1.delta(MODULE).T) + c[:, 1:] * (x @ x2.delta(MODULE).T)
    torch.testing.assert_close(layer(x), want, atol=1e-4, rtol=1e-4)
    with pytest.raises(LoralabError, match="needs experts of equal rank"):
        combine(load_base(tiny_base)[0], [e1, e2], "arrow", mix="params")


def test_mu_routing_equals_the_matching_merges(tiny_base: Path, tmp_path: Path) -> None:
    experts = [random_adapter(tmp_path / f"e{i}", seed=i) for i in range(3)]
    pairs = [("output", "uniform"), ("params", "uniform_factor")]
    for mix, merge_name in pairs:
        routed = logits(combine(load_base(tiny_base)[0], experts, "uniform_route", mix=mix))
        merged = logits(combine(load_base(tiny_base)[0], experts, merge_name))
        torch.testing.assert_close(routed, merged, atol=1e-4, rtol=1e-4)
    # and the two mixes differ (cross terms)
    a = logits(combine(load_base(tiny_base)[0], experts, "uniform"))
    b = logits(combine(load_base(tiny_base)[0], experts, "uniform_factor"))
    assert (a - b).abs().max() > 1e-3


def test_learned_weights_round_trip_through_fixed_router() -> None:
    r = FixedRouter(torch.tensor([0.25, 0.75]), trainable=True)
    assert r.weights.requires_grad and r(torch.zeros(3, 4)).tolist() == [[0.25, 0.75]] * 3


# ---------------------------------------------------------------------------
# One suite over the registry
# ---------------------------------------------------------------------------

IDENTITY_OPTIONS: dict[str, dict[str, Any]] = {
    "ties": {"density": 1.0},
    "dare_linear": {"density": 1.0},
    "dare_ties": {"density": 1.0},
    "magnitude_prune": {"density": 1.0},
    "ties_factor": {"density": 1.0},
}


@pytest.fixture(scope="module")
def suite(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("suite")
    experts = [random_adapter(root / f"e{i}", seed=10 + i) for i in range(2)]
    data = root / "target.jsonl"
    rows = [{"prompt": f"Where is item {i}?", "answer": f"Item {i} is in box {i % 3}."} for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"experts": experts, "data": str(data), "root": root, "base": tiny_base}


def suite_options(name: str, suite: dict[str, Any]) -> dict[str, Any]:
    if name == "cat_learned":
        return {"data": suite["data"], "epochs": 1, "batch_size": 4}
    if name == "lorahub":
        return {"data": suite["data"], "budget": 6, "shots": 3}
    if name == "oracle":
        return {"expert": "e0"}
    return {}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_is_deterministic_and_generates(name: str, suite: dict[str, Any]) -> None:
    spec = METHODS[name]
    opts = suite_options(name, suite)
    runs = []
    for _ in range(2):
        model, tok = load_base(suite["base"])
        before = logits(model)
        combine((model, tok), suite["experts"], name, **opts)
        runs.append(logits(model))
        out = model.generate(IDS, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
        assert out.shape == (1, 8) and out.dtype == torch.long
    assert runs[0].shape == before.shape and runs[0].dtype == before.dtype
    torch.testing.assert_close(runs[0], runs[1], atol=1e-5, rtol=1e-5)  # determinism under the default seed
    changed = float((runs[0] - before).abs().max())
    if spec.kind != "learned":  # a learned method may rightly keep weights near 0 for random experts
        assert (changed == 0.0) if name == "base" else (changed > 1e-4), name
    if spec.kind == "merge":
        merged = merge(suite["experts"], name, **opts)
        for m in merged.modules:
            d = merged.delta(m)
            assert d.dtype == torch.float32 and d.shape == load_expert(suite["experts"][0]).delta(m).shape


@pytest.mark.parametrize("name", sorted(n for n, s in METHODS.items() if s.kind in ("merge", "router")))
def test_one_expert_in_gives_that_expert_out(name: str, suite: dict[str, Any]) -> None:
    one = suite["experts"][:1]
    want = logits(combine(load_base(suite["base"])[0], one, "oracle"))
    got = logits(combine(load_base(suite["base"])[0], one, name, **IDENTITY_OPTIONS.get(name, {})))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n, s in METHODS.items() if s.kind == "merge"))
def test_exported_adapter_loads_in_peft_and_matches(name: str, suite: dict[str, Any], tmp_path: Path) -> None:
    from peft import PeftModel

    merged = merge(suite["experts"], name)
    out = export_adapter(merged, suite["experts"], tmp_path / name)
    peft_model = PeftModel.from_pretrained(load_base(suite["base"])[0], str(out))
    ours = logits(combine(load_base(suite["base"])[0], suite["experts"], name))
    torch.testing.assert_close(logits(peft_model), ours, atol=1e-4, rtol=1e-4)


def test_an_input_without_peft_type_exports_an_adapter_peft_loads(
    suite: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from peft import PeftModel

    bare = tmp_path / "bare"
    shutil.copytree(suite["experts"][0], bare)
    config = read_json(bare / "adapter_config.json")
    del config["peft_type"]  # read as LoRA, PEFT's default type; PEFT's loader needs the field
    (bare / "adapter_config.json").write_text(json.dumps(config))
    out = export_adapter(merge([bare], "uniform"), [bare], tmp_path / "out")
    assert read_json(out / "adapter_config.json")["peft_type"] == "LORA"
    peft_model = PeftModel.from_pretrained(load_base(suite["base"])[0], str(out))
    ours = logits(combine(load_base(suite["base"])[0], [bare], "uniform"))
    torch.testing.assert_close(logits(peft_model), ours, atol=1e-4, rtol=1e-4)


def test_bad_combinations_fail_with_one_line(tiny_base: Path, tmp_path: Path) -> None:
    ok = hand_adapter(tmp_path / "ok", {MODULE: (torch.ones(1, 64), torch.ones(32, 1))}, 1)
    other = hand_adapter(
        tmp_path / "other", {"model.layers.0.mlp.up_proj": (torch.ones(1, 32), torch.ones(64, 1))}, 1
    )
    wrong = hand_adapter(tmp_path / "wrong", {MODULE: (torch.ones(1, 48), torch.ones(32, 1))}, 1)
    rank2 = hand_adapter(tmp_path / "rank2", {MODULE: (torch.ones(2, 64), torch.ones(32, 2))}, 1)
    model, _ = load_base(tiny_base)
    cases: list[tuple[str, list[Path], str, dict[str, Any]]] = [
        ("unknown; choose one of", [ok], "nope", {}),
        (r"--opt top_q: method arrow takes top_k, temperature", [ok], "arrow", {"top_q": 1}),
        ("targets other modules", [ok, other], "uniform", {}),
        ("another base", [wrong], "uniform", {}),
        (r"--opt weights: 3 given for 2 experts", [ok, rank2], "linear", {"weights": [1, 2, 3]}),
        (r"--opt density=1.5: must be in \(0, 1\]", [ok], "ties", {"density": 1.5}),
        (r"--opt density=0.0: must be in \(0, 1\]", [ok], "dare_ties", {"density": 0.0}),
        ("needs experts of equal rank; got ranks 1, 2", [ok, rank2], "linear_factor", {}),
        (r"--opt elect=most: choose one of total, frequency", [ok], "ties", {"elect": "most"}),
        (r"--opt density=abc: expected float", [ok], "ties", {"density": "abc"}),
        ("name one expert", [ok, rank2], "oracle", {}),
    ]
    for pattern, experts, method, opts in cases:
        with pytest.raises(LoralabError, match=pattern):
            combine(model, experts, method, **opts)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    with pytest.raises(LoralabError, match=r"adapter_config\.json: not valid JSON"):
        load_expert(tmp_path / "broken")
    cfg = json.loads((tmp_path / "ok" / "adapter_config.json").read_text())
    for flag, what in (("use_dora", "DoRA"), ("lora_bias", "a LoRA bias")):
        (tmp_path / "ok" / "adapter_config.json").write_text(json.dumps({**cfg, flag: True}))
        with pytest.raises(LoralabError, match=f"field {flag}: {what}"):
            load_expert(tmp_path / "ok")
    (tmp_path / "ok" / "adapter_config.json").write_text(json.dumps(cfg))
    (tmp_path / "ok" / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(LoralabError, match=r"adapter_model\.safetensors: cannot read"):
        load_expert(tmp_path / "ok")
    (tmp_path / "ok" / "adapter_model.safetensors").unlink()
    with pytest.raises(LoralabError, match=r"adapter_model\.safetensors: file not found"):
        load_expert(tmp_path / "ok")


@pytest.mark.parametrize("name", ["cat_learned", "lorahub"])
def test_learned_methods_apply_exactly_the_weights_they_report(name: str, suite: dict[str, Any]) -> None:
    model, tok = load_base(suite["base"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    combine((model, tok), suite["experts"], name, **suite_options(name, suite))
    weights = model.loralab_merge.info["weights"]
    experts = [load_expert(p) for p in suite["experts"]]
    for m in experts[0].modules:
        w = weights[m] if name == "cat_learned" else weights
        if name == "cat_learned":  # per-layer weights on the deltas
            want = sum(wi * e.delta(m) for wi, e in zip(w, experts, strict=True))
        else:  # one weight per expert on both factors
            a = sum(wi * e.scaling * e.A[m] for wi, e in zip(w, experts, strict=True))
            b = sum(wi * e.B[m] for wi, e in zip(w, experts, strict=True))
            want = b @ a
        got = model.get_submodule(m).weight.detach() - before[f"{m}.weight"]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    if name == "cat_learned":
        assert any(abs(x - 1.0) > 1e-4 for w in weights.values() for x in w)  # the weights moved from 1
    else:
        assert all(-1.5 <= x <= 1.5 for x in weights)
    untouched = [n for n in before if not any(n.startswith(m) for m in experts[0].modules)]
    assert all(torch.equal(before[n], model.get_parameter(n)) for n in untouched)


def test_cli_lists_methods_and_combines(
    suite: dict[str, Any], tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    from peft import PeftModel

    from loralab.combination import load_combined
    from tests.conftest import run_cli

    assert run_cli(["ls", "methods"], monkeypatch) == 0
    listed = capsys.readouterr().out
    assert (
        all(name in listed for name in METHODS)
        and "density: float, in (0, 1] = 0.2" in listed
        and "T_e[sign=g]" in listed
        and "weights: list[float] | None" in listed
    )
    e0, e1 = map(str, suite["experts"])
    out = tmp_path / "ties"
    args = [
        "combine",
        "--method",
        "ties",
        "--expert",
        e0,
        "--expert",
        e1,
        "--opt",
        "density=0.5",
        "--out",
        str(out),
    ]
    assert run_cli(args, monkeypatch) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["method"] == "ties" and meta["options"] == {"density": 0.5}
    peft_logits = logits(PeftModel.from_pretrained(load_base(suite["base"])[0], str(out)))
    want = logits(combine(load_base(suite["base"])[0], suite["experts"], "ties", density=0.5))
    torch.testing.assert_close(peft_logits, want, atol=1e-4, rtol=1e-4)
    # a router is written as a recipe with its experts, and loads back to the same model
    routed = tmp_path / "arrow"
    args = [
        "combine",
        "--method",
        "arrow",
        "--experts",
        str(suite["root"]),
        "--opt",
        "top_k=1",
        "--out",
        str(routed),
    ]
    # PEFT-made experts record no base: a recipe is refused until --base says which, then stores it
    assert run_cli(args, monkeypatch) == 2
    assert "--base: needed to record the recipe's base" in capsys.readouterr().err
    assert not routed.exists()
    args[1:1] = ["--base", str(suite["base"])]
    assert run_cli(args, monkeypatch) == 0
    assert read_json(routed / "combination.json")["base"] == str(suite["base"])
    want = logits(combine(load_base(suite["base"])[0], suite["experts"], "arrow", top_k=1))
    torch.testing.assert_close(logits(load_combined(routed)), want)
    # bad input: one line, exit 2, nothing written
    assert run_cli([*args[:-2], "--out", str(routed)], monkeypatch) == 2
    bad = ["combine", "--method", "ties", "--expert", e0, "--opt", "density=2", "--out", str(tmp_path / "x")]
    assert run_cli(bad, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--opt density=2: must be in (0, 1]" in err
    assert not (tmp_path / "x").exists()
