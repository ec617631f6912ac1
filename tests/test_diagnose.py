"""The diagnose stage, checked on numbers worked out by hand (and against the Theorem 2 lab's closed form)."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from loralab.combination import combine
from loralab.combination.arrow import install_arrow
from loralab.combination.routers import uniform_route
from loralab.diagnose import VERSION
from loralab.diagnose.answers import Sorter, strongest, tally, vocabularies
from loralab.diagnose.attribution import leave_one_out
from loralab.diagnose.common import Probe, layer_groups, make_probe, owners
from loralab.diagnose.geometry import geometry, module_geometry
from loralab.diagnose.routing import capture, token_stats, trace
from loralab.diagnose.strength import strength_curve
from loralab.diagnose.validate import spearman_ci
from loralab.diagnose.verdict import verdict
from loralab.experts.library import Expert, distinct, load_expert
from loralab.worlds.jsonl import read_jsonl, write_jsonl
from tests.conftest import make_lora_folder, run_cli

# ---------------------------------------------------------------------------
# A one-module toy: token ids -> fixed embeddings (4) -> `proj` (4 -> 3), where the experts sit
# ---------------------------------------------------------------------------


class Toy(nn.Module):
    def __init__(self, emb: torch.Tensor, d_out: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(emb.float())
        self.proj = nn.Linear(emb.shape[1], d_out, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(input_ids))


def expert(
    name: str, A: list[list[float]] | torch.Tensor, B: list[list[float]] | torch.Tensor, s: float = 1.0
) -> Expert:
    a, b = torch.as_tensor(A, dtype=torch.float32), torch.as_tensor(B, dtype=torch.float32)
    return Expert(name, Path("/nonexistent") / name, int(a.shape[0]), s, {"proj": a}, {"proj": b}, {})


def probe(ids: list[int], owner: int | None) -> Probe:
    n = len(ids)
    classes = {"all": list(range(n)), "prompt": [0], "generated": list(range(1, n)), "focus": list(range(n))}
    return Probe({"prompt": "p"}, ids, 1, classes, owner, [str(i) for i in ids])


EMB = torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [0.3, -0.7, 1.1, 0.5]])


def random_expert(name: str, seed: int) -> Expert:
    gen = torch.Generator().manual_seed(seed)
    return expert(name, torch.randn(2, 4, generator=gen), torch.randn(3, 2, generator=gen), 2.0)


def test_identical_experts_overlap_fully_and_arrow_is_exactly_flat() -> None:
    x = random_expert("x", 0)
    twin = expert("twin", x.A["proj"].clone(), x.B["proj"].clone(), 2.0)
    g = module_geometry([x, twin], "proj", 0.5)["pairs"]["0-1"]
    assert g["prototype_abs_cos"] == pytest.approx(1.0, abs=1e-6)
    assert g["delta_cos"] == pytest.approx(1.0, abs=1e-12)
    assert len(g["input_angles"]) == 2 and len(g["output_angles"]) == 2
    assert max(g["input_angles"] + g["output_angles"]) == pytest.approx(0.0, abs=1e-7)
    assert g["sign_conflict"] == 0.0
    model = install_arrow(Toy(EMB), [x, twin], top_k=2)
    routing = trace(model, [probe([0, 1, 2], 0)], ["x", "twin"])
    assert routing["overall"]["entropy"] == pytest.approx(math.log(2), abs=1e-12)
    assert routing["overall"]["entropy_ratio"] == pytest.approx(1.0, abs=1e-12)
    assert routing["overall"]["coefficients"] == [0.5, 0.5]
    assert routing["overall"]["margin"] == pytest.approx(0.0, abs=1e-6)


def test_an_expert_and_its_negation() -> None:
    x = random_expert("x", 1)
    neg = expert("neg", x.A["proj"].clone(), -x.B["proj"], 2.0)
    g = module_geometry([x, neg], "proj", 1.0)["pairs"]["0-1"]
    assert g["prototype_abs_cos"] == pytest.approx(1.0, abs=1e-6)
    assert g["delta_cos"] == pytest.approx(-1.0, abs=1e-12)
    assert max(g["input_angles"] + g["output_angles"]) == pytest.approx(0.0, abs=1e-7)
    assert g["sign_conflict"] == 1.0  # every entry is kept by both, with the opposite sign


def test_orthogonal_rank_one_experts_by_hand() -> None:
    ex = expert("X", [[1, 0, 0, 0]], [[1], [0], [0]])
    ey = expert("Y", [[0, 1, 0, 0]], [[0], [1], [0]])
    ez = expert("Z", [[1, 1, 0, 0]], [[0], [0], [2]])
    geo = geometry([ex, ey, ez], density=1.0)
    xy, xz, yz = (geo["modules"]["proj"]["pairs"][k] for k in ("0-1", "0-2", "1-2"))
    assert xy["input_angles"] == [pytest.approx(math.pi / 2)] and xy["output_angles"] == [
        pytest.approx(math.pi / 2)
    ]
    assert xz["input_angles"] == [pytest.approx(math.pi / 4)] and yz["input_angles"] == [
        pytest.approx(math.pi / 4)
    ]
    assert xy["prototype_abs_cos"] == pytest.approx(0.0, abs=1e-7)
    assert xz["prototype_abs_cos"] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert xy["delta_cos"] == 0.0 and xz["delta_cos"] == 0.0
    assert geo["modules"]["proj"]["norm"] == pytest.approx([1.0, 1.0, 2 * math.sqrt(2)])
    assert geo["modules"]["proj"]["concentration"] == pytest.approx([1.0, 1.0, 1.0])
    assert geo["pairs"]["0-2"]["input_angle_mean_deg"] == pytest.approx(45.0)
    # Arrow, top_k=1: inputs along X's prototype (token 0) go to X, along Y's (token 1) to Y
    model = install_arrow(Toy(EMB), [ex, ey], top_k=1)
    routing = trace(model, [probe([0, 0, 0], 0), probe([1, 1], 1)], ["X", "Y"])
    acc = routing["accuracy"]
    assert acc["all_tokens"] == 1.0 and acc["focus_tokens"] == 1.0 and acc["all_tokens_top1"] == 1.0
    assert acc["chance"] == 0.5
    # top_k=2, T=1 on token 0: scores |x.p| = [2, 0], c_X = e^2 / (e^2 + 1), margin 2, |x| = 2
    model = install_arrow(Toy(EMB), [ex, ey], top_k=2)
    one = trace(model, [probe([0, 0], 0)], ["X", "Y"])["overall"]
    assert one["owner_coefficient"] == pytest.approx(math.e**2 / (math.e**2 + 1), abs=1e-6)
    assert one["margin"] == pytest.approx(2.0, abs=1e-6)
    assert one["x_norm"] == pytest.approx(2.0)
    assert one["projections"] == pytest.approx([2.0, 0.0], abs=1e-6)
    # a fixed router: flat, margin 0, no prototypes
    flat = trace(uniform_route(Toy(EMB), [ex, ey]), [probe([0, 1], 0)], ["X", "Y"])["overall"]
    assert flat["entropy"] == pytest.approx(math.log(2)) and flat["margin"] == 0.0
    assert flat["owner_coefficient"] == 0.5 and flat["projections"] is None


def test_sign_conflict_by_hand() -> None:
    p = expert("P", [[1, 1]], [[1], [1]])  # delta [[1, 1], [1, 1]]
    q = expert("Q", [[1, -1]], [[1], [1]])  # delta [[1, -1], [1, -1]]
    p.A["proj"], q.A["proj"] = p.A["proj"], q.A["proj"]
    g = module_geometry([p, q], "proj", 1.0)["pairs"]["0-1"]
    assert g["sign_conflict"] == 0.5
    assert g["delta_cos"] == pytest.approx(0.0)


def test_layer_groups_and_owners() -> None:
    mods = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj", "model.layers.1.mlp.down_proj"]
    assert layer_groups(mods) == {
        "attention/early": [mods[0]],
        "mlp/early": [mods[1]],
        "mlp/late": [mods[2]],
    }
    lib = [
        Expert(n, Path(n), 1, 1.0, {}, {}, {"data": [f"/gone/{f}.train.jsonl" for f in files]})
        for n, files in (("A-B", ["ab"]), ("B-C", ["bc"]), ("oracle", ["ab", "bc", "ac_cot"]))
    ]
    rows = [{"task": "ab"}, {"task": "bc"}, {"task": "ac_cot"}, {"task": "ac"}]
    assert owners(rows, lib) == ([0, 1, 2, None], "the experts' training data (meta.json)")
    assert owners(rows, lib[:2])[0] == [0, 1, None, None]
    assert owners([{"expert": "B-C"}, {}], lib)[0] == [1, None]
    with pytest.raises(Exception, match="row 1 has expert 'Z'"):
        owners([{"expert": "Z"}], lib)
    # two seeds' experts in folders of one name: `distinct` names them by path, and a row naming the folder
    # could be either, so it is refused rather than given to the first
    twins = distinct([Expert("hop1", Path(s) / "A-B", 1, 1.0, {}, {}, {}) for s in ("s0", "s1")])
    assert [e.name for e in twins] == ["s0/A-B", "s1/A-B"]
    assert owners([{"expert": "s1/A-B"}], twins)[0] == [1]
    with pytest.raises(Exception, match="row 2 has expert 'A-B', which could be any of s0/A-B, s1/A-B"):
        owners([{"expert": "s0/A-B"}, {"expert": "A-B"}], twins)
    assert [e.name for e in distinct(lib)] == ["A-B", "B-C", "oracle"]  # names that differ stay


def test_owners_break_a_task_tie_by_the_fact(tmp_path: Path) -> None:
    # a bridge setup: both experts are trained on ab, bc and ac_cot (the shared fake bridge F1, F2, F12 CoT),
    # only LoRA 1 on R1's ab facts and only LoRA 2 on R2's bc facts
    def row(dataset: str, task: str, triplet: int) -> str:
        return json.dumps({"dataset": dataset, "task": task, "triplet": triplet, "prompt": "q"})

    shared = [row("FF", "ab", 0), row("FF", "bc", 0), row("FF", "ac_cot", 0)]
    files = {
        "lora1": [row("RR", "ab", 0), row("RR", "ab", 1), *shared],
        "lora2": [row("RR", "bc", 0), *shared],
    }
    lib = []
    for name, lines in files.items():
        (tmp_path / f"{name}.train.jsonl").write_text("\n".join(lines) + "\n")
        lib.append(
            Expert(name, Path(name), 1, 1.0, {}, {}, {"data": [str(tmp_path / f"{name}.train.jsonl")]})
        )
    rows = [
        {"dataset": "RR", "task": "ab", "triplet": 1},  # only LoRA 1 saw it
        {"dataset": "RR", "task": "bc", "triplet": 0},  # only LoRA 2
        {"dataset": "FF", "task": "ab", "triplet": 0},  # both: a tie stays a tie
        {"dataset": "RR", "task": "ab", "triplet": 7},  # neither
        {"task": "ab"},  # no fact named
    ]
    assert owners(rows, lib) == ([0, 1, None, None, None], "the experts' training data (meta.json)")


def test_verdict_labels_and_spearman() -> None:
    curve = {
        "expert": "X",
        "points": [{"lambda": x, "accuracy": y} for x, y in ((0, 0), (0.5, 0.1), (1, 0.8))],
    }
    diag: dict[str, Any] = {
        "method": "uniform",
        "options": {},
        "experts": ["X", "Y"],
        "routing": {
            "experts": ["X", "Y"],
            "by_class": {"focus": {"entropy_ratio": 0.99}},
            "accuracy": {
                "focus_tokens": 0.52,
                "all_tokens": 0.5,
                "chance": 0.5,
                "by_owner": {"X": {"owner_coefficient": 0.52}},
            },
        },
        "strength": {"curves": [curve]},
        "probes": {"two_hop": 4, "two_hop_owned": 0},
        "geometry": {"summary": {"prototype_abs_cos": 0.9, "delta_cos": 0.1, "sign_conflict": 0.1}},
    }
    labels = verdict(diag)["labels"]
    assert "router flat (entropy 0.99 of max)" in labels
    assert "routes at chance (owner 0.52, chance 0.50)" in labels
    # the routing gives X 0.52 of itself: accuracy 0.1 + 0.02 / 0.5 * 0.7 = 0.128 of 0.8 = 0.16
    assert "forgets by dilution (X keeps 0.16 of its accuracy at lambda 0.52)" in labels
    assert "does not compose (no expert owns the two-hop prompts)" in labels
    assert "prototypes alike (|cos| 0.90)" in labels
    diag["routing"]["accuracy"]["focus_tokens"] = 0.9
    assert (
        "routes correctly, does not compose (owner 0.90) (no expert owns the two-hop prompts)"
        in verdict(diag)["labels"]
    )
    # no answer tokens marked: no answer label, no score
    assert not any("answer" in label for label in verdict(diag)["labels"])
    assert verdict(diag)["scores"]["answer_owner_top1"] is None
    # the owner is the top expert at 0.7 of the answer tokens: 0.7 >= 0.5 + 0.15 picks; 0.6 does not
    diag["routing"]["by_class"]["answer"] = {"tokens": 50, "owner_top1": 0.7}
    assert "picks the owner at the answer (top-1 0.70, chance 0.50)" in verdict(diag)["labels"]
    diag["routing"]["by_class"]["answer"]["owner_top1"] = 0.6
    assert "answer tokens at chance (top-1 0.60, chance 0.50)" in verdict(diag)["labels"]
    assert verdict(diag)["scores"]["answer_owner_top1"] == 0.6
    # 4 cells in a perfect order: rho 1, and no interval (a bootstrap would say [1, 1])
    four = spearman_ci([1, 2, 3, 4], [10, 20, 30, 45])
    assert (four["rho"], four["ci95"], four["why"]) == (1.0, None, "no interval: fewer than 8 cells")
    # 8 cells but two values on a side (0 or 2.5% accuracy): no interval either
    two = spearman_ci([1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 2.5, 2.5, 2.5, 2.5])
    assert two["ci95"] is None and two["why"] == "no interval: fewer than 3 distinct values"
    # 8 cells, one pair swapped: rho = 1 - 6 * 2 / (8 * 63) and an interval around it
    swapped = spearman_ci([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 5, 4, 6, 7, 8])
    assert swapped["rho"] == pytest.approx(1 - 12 / 504)
    assert swapped["ci95"][0] < swapped["rho"] <= swapped["ci95"][1] <= 1.0
    assert spearman_ci([1, 2, 3, 4], [4, 3, 2, 1])["rho"] == -1.0
    assert spearman_ci([1, 1, 1], [1, 2, 3])["rho"] is None


# ---------------------------------------------------------------------------
# Theorem 2 lab: two summed min-norm adapters, seen by the panel, against the lab's closed form
# ---------------------------------------------------------------------------


class Readout(nn.Module):
    """The lab's readout W (entities x D) as a linear layer over the features phi."""

    def __init__(self, W: torch.Tensor) -> None:
        super().__init__()
        self.readout = nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.readout.weight.copy_(W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x)


def test_theory_lab_sum_agrees_with_the_closed_form() -> None:
    from loralab.theory.edits import arrow_weights, edit_values
    from loralab.theory.experiments import hop_adapters, thm2_sum
    from loralab.theory.lab import sample_single
    from loralab.theory.model import (
        all_prompts,
        build_model,
        draw_u,
        random_embeddings,
        random_world,
        relu_features,
    )

    rng, gen = random.Random(0), torch.Generator().manual_seed(0)
    world = random_world(6, 2, 1.0, rng)
    prompts = all_prompts(6, 2)
    feats = relu_features(random_embeddings(6, 2, 64, gen).inputs(prompts), draw_u(512, 64, gen))
    lab = build_model(world, prompts, feats)
    case = sample_single(world, rng, library_pairs=0)
    assert case is not None
    c = case.chains[0]
    ad = hop_adapters(lab, case.chains)
    closed = thm2_sum(lab, case).values  # a1, a2: v_j . phi(xi) / |v_j|^2
    v = [lab.phi([c.hop1])[0], lab.phi([c.hop2])[0]]
    w = [edit_values(lab, [c.hop1], [c.y])[:, 0], edit_values(lab, [c.hop2], [c.z])[:, 0]]
    # the lab's adapter A (entities x 1) is LoRA's B, its B (D x 1) is LoRA's A
    experts = [
        Expert(
            f"r{i + 1}",
            Path(f"/nonexistent/r{i + 1}"),
            1,
            1.0,
            {"readout": a.B.T.float()},
            {"readout": a.A.float()},
            {},
        )
        for i, a in enumerate(ad)
    ]
    # geometry: Delta_j = w_j v_j^T / |v_j|^2 (eq. 1), rank 1
    geo = module_geometry(experts, "readout", 0.0)
    assert geo["norm"] == pytest.approx([float(w[j].norm() / v[j].norm()) for j in (0, 1)], rel=1e-5)
    assert geo["concentration"] == pytest.approx([1.0, 1.0], abs=1e-6)
    cos_v = float(v[0] @ v[1] / (v[0].norm() * v[1].norm()))
    cos_w = float(w[0] @ w[1] / (w[0].norm() * w[1].norm()))
    pair = geo["pairs"]["0-1"]
    assert pair["prototype_abs_cos"] == pytest.approx(abs(cos_v), abs=1e-5)
    assert pair["delta_cos"] == pytest.approx(cos_w * cos_v, abs=1e-5)
    # routing: Arrow's |x . p_j| on the two-hop prompt is |a_j| |v_j|; normalised by |v_j| it is eq. (22)
    xi = lab.phi([c.two_hop])
    routed = install_arrow(Readout(lab.W), experts, top_k=2)
    with capture(routed) as seen:
        routed(xi)
    x, coeff = seen["readout"]
    proj = token_stats(routed.readout.router, x, coeff)["projections"][0]
    expected = [abs(closed["a1"]) * float(v[0].norm()), abs(closed["a2"]) * float(v[1].norm())]
    assert proj.tolist() == pytest.approx(expected, rel=1e-5)
    share = proj / torch.stack([v[0].norm(), v[1].norm()])
    assert (share / share.sum()).tolist() == pytest.approx(arrow_weights(list(ad), xi[0]).tolist(), rel=1e-5)
    # attribution: leaving adapter j out of the sum takes a_j (i_new - i_old) off the output (Theorem 2)
    net = Readout(lab.W)
    full = combine(copy.deepcopy(net), experts, "linear")
    drops = leave_one_out(
        full,
        lambda e: combine(copy.deepcopy(net), [experts[1 - e]], "linear"),
        2,
        {"readout": ["readout"]},
        lambda m: m(xi)[0].detach(),
    )
    for j, a in enumerate((closed["a1"], closed["a2"])):
        assert drops[j]["readout"].tolist() == pytest.approx((a * w[j]).tolist(), abs=1e-5)
    assert float(drops[1]["readout"][c.z]) == pytest.approx(closed["a2"], abs=1e-5)


# ---------------------------------------------------------------------------
# On the tiny fixture base
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two random non-zero adapters (attention + MLP) for the tiny base."""
    from loralab.models.load import load_base

    folder = tmp_path_factory.mktemp("diag-lib")
    for seed, name in enumerate(("X", "Y")):
        model, _ = load_base(tiny_base)
        make_lora_folder(
            folder / name, model, ["q_proj", "v_proj", "up_proj", "down_proj"], 4, seed, alpha=32.0
        )
    return folder


@pytest.fixture(scope="module")
def probes(twohop_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = read_jsonl(twohop_dir / "ab.test.jsonl", required=("prompt", "gold"))[:4]
    rows += read_jsonl(twohop_dir / "ac_cot.test.jsonl", required=("prompt", "gold"))[:2]
    out = tmp_path_factory.mktemp("probes") / "probes.jsonl"
    write_jsonl(out, [{**r, "expert": "X" if r["task"] == "ab" else "Y"} for r in rows])
    return out


def test_token_classes(tiny_base: Path, twohop_dir: Path) -> None:
    from loralab.models.load import load_base

    _, tok = load_base(tiny_base)
    row = read_jsonl(twohop_dir / "ac_cot.test.jsonl", required=("prompt", "gold"))[0]
    p = make_probe(tok, row, row["answer"])
    text = lambda cls: "".join(p.tokens[i] for i in p.classes[cls])  # noqa: E731
    assert row["a"] in text("subject") and row["a"] not in text("relation")
    assert text("answer").strip() == row["gold"]
    assert text("bridge").strip() == row["b"]
    assert p.classes["focus"][0] == p.n_prompt - 1 and len(p.classes["generated"]) == len(p.ids) - p.n_prompt


def test_strength_zero_is_the_base_and_one_is_eval(
    tiny_base: Path, lib: Path, twohop_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loralab.evaluation import evaluate
    from loralab.experiments.store import cells, connect, examples
    from loralab.models.load import load_base

    rows = read_jsonl(twohop_dir / "ab.test.jsonl", required=("prompt", "gold"))[:6]
    data = tmp_path / "ab.test.jsonl"
    write_jsonl(data, rows)
    model, tok = load_base(tiny_base)
    before = {k: t.clone() for k, t in model.state_dict().items()}
    curve = strength_curve(model, tok, load_expert(lib / "X"), rows, (0.0, 1.0, 1.5), keep_outputs=True)
    assert all(torch.equal(before[k], t) for k, t in model.state_dict().items())  # weights restored
    base_run = evaluate(load_base(tiny_base)[0], tok, rows, 48)
    at0, at1, _ = curve["points"]
    assert at0["outputs"] == [r["output"] for r in base_run.rows] and at0["accuracy"] == base_run.accuracy
    args = ["eval", "--base", str(tiny_base), "--data", str(data), "--expert", str(lib / "X")]
    assert run_cli([*args, "--max-new-tokens", "48", "--workdir", str(tmp_path / "w")], monkeypatch) == 0
    con = connect(tmp_path / "w" / "results.sqlite")
    (cell,) = cells(con)
    stored = {r["example_id"]: r["output"] for r in examples(con, cell["id"])}
    assert at1["outputs"] == [stored[r["id"]] for r in rows] and at1["accuracy"] == cell["accuracy"]
    assert at1["outputs"] != at0["outputs"]  # the expert changes the answers: the comparison has teeth


def test_gold_margins_and_delta_size_by_hand(tiny_base: Path, lib: Path, twohop_dir: Path) -> None:
    """The margin is the next-token gap after the prompt when the answer is the gold alone, computed here
    from one unpadded forward per row (so the batch's right padding is checked too); the delta's size from
    the adapter file's own factors (PEFT's s = alpha / r)."""
    from safetensors.torch import load_file

    from loralab.diagnose.strength import delta_size, gold_margins, push
    from loralab.models.chat import prompt_text
    from loralab.models.load import load_base

    model, tok = load_base(tiny_base)
    rows = read_jsonl(twohop_dir / "ab.test.jsonl", required=("prompt", "gold"))[:5]
    rows += read_jsonl(twohop_dir / "bc.test.jsonl", required=("prompt", "gold"))[:3]
    rows = [{**r, "answer": r["gold"]} for r in rows]
    got = gold_margins(model, tok, rows, batch_size=3)
    assert (
        len({len(tok(prompt_text(tok, r["prompt"]), add_special_tokens=False)["input_ids"]) for r in rows})
        > 1
    )
    for r, m in zip(rows, got, strict=True):
        ids = tok(prompt_text(tok, r["prompt"]), add_special_tokens=False)["input_ids"]
        first = tok(r["gold"], add_special_tokens=False)["input_ids"][0]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        other = torch.cat([logits[:first], logits[first + 1 :]]).max()
        assert m == pytest.approx(float(logits[first] - other), abs=1e-4)
    assert gold_margins(model, tok, [{**rows[0], "answer": "no such entity"}]) == [None]

    expert = load_expert(lib / "X")
    weights = load_file(str(lib / "X" / "adapter_model.safetensors"))
    config = json.loads((lib / "X" / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    sizes = []
    for key, a in weights.items():
        if ".lora_A." not in key:
            continue
        b = weights[key.replace(".lora_A.", ".lora_B.")]
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", "")
        sizes.append(float((scale * b @ a).norm() / model.get_submodule(name).weight.norm()))
    assert len(sizes) == len(expert.modules) and delta_size(model, expert) == pytest.approx(
        sum(sizes) / len(sizes), rel=1e-5
    )
    curve = strength_curve(model, tok, expert, rows, (0.0, 0.5, 1.0))
    at0 = curve["points"][0]
    assert at0["margin"] == pytest.approx(sum(got) / len(got), abs=1e-4)
    assert at0["margin_positive"] == sum(m > 0 for m in got) / len(got)
    assert curve["margin_n"] == len(rows)
    summary = push(curve)
    assert summary is not None and summary["push"] == pytest.approx(
        curve["points"][2]["margin"] - at0["margin"]
    )
    if at0["margin"] < 0:
        assert summary["ratio"] == pytest.approx(summary["push"] / -at0["margin"])
    else:
        assert summary["ratio"] is None


def test_cli_diagnose_router_and_merge(
    lib: Path,
    probes: Path,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["diagnose", "--base", str(tiny_base), "--expert", str(lib), "--data", str(probes)]
    assert (
        run_cli([*args, "--method", "arrow", "--opt", "top_k=2", "--out", str(tmp_path / "a")], monkeypatch)
        == 0
    )
    diag = json.loads((tmp_path / "a" / "diagnostics.json").read_text())
    assert set(diag) >= {"routing", "geometry", "strength", "attribution", "verdict"}
    acc = diag["routing"]["accuracy"]
    assert 0 <= acc["all_tokens"] <= 1 and acc["chance"] == 0.5
    assert set(diag["routing"]["by_class"]) >= {"prompt", "generated", "focus", "subject", "relation"}
    assert [c["expert"] for c in diag["strength"]["curves"]] == ["X", "Y"]
    assert [p["lambda"] for p in diag["strength"]["curves"][0]["points"]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    assert set(diag["attribution"]["experts"]["X"]) == {
        "attention/early",
        "attention/late",
        "mlp/early",
        "mlp/late",
        "all",
    }
    assert diag["attribution"]["experts"]["Y"]["all"]["bridge"] is not None  # CoT rows carry the bridge B
    page = (tmp_path / "a" / "diagnostics.html").read_text()
    assert "data:image/png;base64," in page
    # margins on every probe with a gold in its answer: X's 4 one-hop rows, Y's 2 CoT rows (the gold's last mention)
    assert [c["margin_n"] for c in diag["strength"]["curves"]] == [4, 2]
    assert "Mean margin of the gold answer" in page
    assert "verdict:" in capsys.readouterr().out
    # whose answers, sorted from the outputs the routing trace read: X owns the 4 one-hop rows, Y the 2 CoT
    by_owner = diag["answers"]["by_owner"]
    assert {k: c["n"] for k, c in by_owner.items()} == {"X": 4, "Y": 2} and "Whose answers" in page
    # a merge has no outputs to trace: they are generated for the answers, as an evaluation would score them
    args_t = [*args, "--method", "ties", "--parts", "answers", "--out", str(tmp_path / "s")]
    assert run_cli(args_t, monkeypatch) == 0
    sorted_t = json.loads((tmp_path / "s" / "diagnostics.json").read_text())["answers"]["by_owner"]
    from loralab.evaluation import evaluate
    from loralab.models.load import load_base

    model, tok = load_base(tiny_base)
    combine((model, tok), [lib / "X", lib / "Y"], "ties")
    scored = evaluate(model, tok, read_jsonl(probes, required=("prompt", "gold")), 128)
    assert sum(c["gold"] for c in sorted_t.values()) == scored.correct
    capsys.readouterr()
    # a merge: no router, routing skipped and said so
    parts = ["--parts", "routing,geometry"]
    assert run_cli([*args, "--method", "ties", *parts, "--out", str(tmp_path / "t")], monkeypatch) == 0
    diag = json.loads((tmp_path / "t" / "diagnostics.json").read_text())
    assert diag["routing"] == {"skipped": "ties is a merge (no router): routing skipped"}
    assert diag["strength"] == {"skipped": "not asked for"} and "summary" in diag["geometry"]
    assert "routing skipped" in capsys.readouterr().out


def test_cli_diagnose_without_labels_and_bad_input(
    lib: Path,
    twohop_dir: Path,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["diagnose", "--base", str(tiny_base), "--expert", str(lib), "--method", "arrow"]
    data = ["--data", str(twohop_dir / "ab.test.jsonl"), "--probes", "2", "--parts", "routing"]
    assert run_cli([*args, *data, "--out", str(tmp_path / "n")], monkeypatch) == 0
    diag = json.loads((tmp_path / "n" / "diagnostics.json").read_text())
    assert "accuracy" not in diag["routing"] and diag["routing"]["accuracy_skipped"] == "no `expert` labels"
    assert "routing accuracy and strength curves skipped" in capsys.readouterr().out
    for extra, needle in (
        (
            ["--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m")],
            "missing.jsonl: dataset file not found",
        ),
        ([*data, "--out", str(tmp_path / "n")], "already exists"),
        ([*data, "--parts", "routing,vibes", "--out", str(tmp_path / "v")], "--parts routing,vibes"),
        ([*data, "--opt", "top_k", "--out", str(tmp_path / "o")], "--opt top_k: expected key=value"),
        # an expert beside itself (here through the library and by name) is not a library of two
        ([*data, "--expert", str(lib / "X"), "--out", str(tmp_path / "t")], "the same expert is given twice"),
        (
            [*data, "--method", "base", "--out", str(tmp_path / "b")],
            "--method base: evaluates the base alone",
        ),
        (
            [*data, "--expert", str(twohop_dir / "ab.test.jsonl"), "--out", str(tmp_path / "f")],
            "a file, not a",
        ),
    ):
        assert run_cli([*args, *extra], monkeypatch) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / x).exists() for x in "mvtbf")
    audit = ["audit", str(lib), str(lib / "Y"), "--base", str(tiny_base), "--out", str(tmp_path / "a")]
    assert run_cli(audit, monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"{lib / 'Y'}: the same expert is given twice" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_cli_diagnose_and_audit_never_write_over_their_inputs(
    lib: Path,
    twohop_dir: Path,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = tmp_path / "lib"
    shutil.copytree(lib, mine)
    other = tmp_path / "other"  # a folder of the user's own: --overwrite must not replace it whole
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    data = shutil.copy(twohop_dir / "ab.test.jsonl", tmp_path / "probes.jsonl")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    diagnose = ["diagnose", "--base", str(tiny_base), "--expert", str(mine), "--method", "uniform"]
    diagnose += ["--data", str(data), "--probes", "2", "--parts", "geometry", "--overwrite"]
    audit = ["audit", str(mine), "--base", str(tiny_base), "--per-expert", "2", "--overwrite"]
    for args, out, needle in (
        (diagnose, mine, "inside the input"),  # --out is the library itself
        (diagnose, mine / "X" / "d", "inside the input"),
        (diagnose, tmp_path, "holds the input"),  # the folder holding the library and the probe file
        (audit, tmp_path, "holds the input"),
        (audit, mine / "Y", "inside the input"),
        (diagnose, tiny_base, "inside the input"),  # the --base model folder
        (diagnose, other, "holds other files than a diagnosis (notes.txt)"),
        (audit, other, "holds other files than an audit (notes.txt)"),
    ):
        assert run_cli([*args, "--out", str(out)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: {needle}" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    # without --base, the base the experts record; these adapters record none: one line, no default build
    no_base = [a for a in diagnose if a not in ("--base", str(tiny_base))]
    assert run_cli([*no_base, "--out", str(tmp_path / "nb")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "--base: needed to run the combination (the experts do not record" in err
    assert not (tmp_path / "nb").exists()


def test_a_cell_without_probes_is_noted_once(lib: Path, tiny_base: Path, tmp_path: Path) -> None:
    from loralab.diagnose.cell import NOTHING, current, diagnose_cell

    folder = tmp_path / "diag"
    experts = [lib / "X", lib / "Y"]
    # no stored outputs match the file's rows: nothing to probe, noted so that later runs do not retry
    got = diagnose_cell(
        folder, str(tiny_base), experts, "uniform", {}, tmp_path / "none.jsonl", [], ["geometry"]
    )
    assert got is None and current(folder, ["geometry"]) and not current(folder, ["geometry", "routing"])
    assert json.loads((folder / NOTHING).read_text()) == {
        "version": VERSION,
        "parts": ["geometry"],
        "why": "no probes",
    }
    # an older loralab's diagnosis (no version) or a damaged file is not current: measured again
    (folder / NOTHING).unlink()
    (folder / "diagnostics.json").write_text(json.dumps({"parts": ["geometry"]}))
    assert not current(folder, ["geometry"])
    (folder / "diagnostics.json").write_text("[1]")
    assert not current(folder, ["geometry"])
    (folder / "diagnostics.json").write_text("{")
    assert not current(folder, ["geometry"])


def test_cli_audit(
    lib: Path,
    probes: Path,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["audit", str(lib), "--base", str(tiny_base), "--per-expert", "2"]
    assert run_cli([*args, "--probe", str(probes), "--out", str(tmp_path / "a")], monkeypatch) == 0
    out = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert out["experts"] == ["X", "Y"] and out["probes"] == {"X": 2, "Y": 2}
    for method in ("uniform", "arrow"):
        drop = out["interference"][method]["drop"]
        assert drop[0][0] is None and drop[1][1] is None and drop[0][1] is not None
        curve_x = out["strength"]["curves"][0]
        alone = next(p["accuracy"] for p in curve_x["points"] if p["lambda"] == 1.0)
        assert out["alone"]["X"] == alone
    assert 0 <= out["library"]["arrow"]["routing"]["owner_coefficient"] <= 1
    assert "routing" not in out["library"]["uniform"]
    reading = (tmp_path / "a" / "reading.txt").read_text()
    printed = capsys.readouterr().out
    assert reading.startswith("Alone, the 2 experts") and reading.strip() in printed
    # the routing sentence ends with the owner's top-1 rate at the gold answer's tokens when probes mark them
    top1 = out["library"]["arrow"]["routing"]["answer_owner_top1"]
    said = "at the tokens of the gold answer the owner is its top choice"
    assert (f"{said} {top1:.2f} of the time." in reading) if top1 is not None else (said not in reading)
    assert "uniform: accuracy" in printed and "arrow: accuracy" in printed  # the interference tables
    # the margin sentence: the base's mean margin at lambda 0, the mean push, from the curves' own numbers
    curves = out["strength"]["curves"]
    base = sum(c["points"][0]["margin"] for c in curves) / len(curves)
    pushed = sum(c["points"][4]["margin"] - c["points"][0]["margin"] for c in curves) / len(curves)
    assert f"the gold answer's first token is {base:+.2f} logits on average" in reading
    assert f"the experts alone raise it by {pushed:.2f}" in reading
    assert "margin of the gold answer's first token" in printed and all(c["margin_n"] == 2 for c in curves)
    assert "Mean margin of the gold answer" in (tmp_path / "a" / "audit.html").read_text()
    # whose answers: X alone on Y's probes and Y on X's, and each whole library on all four; the vocabulary
    # is the probes' golds (these adapters have no training files); the gold column is the accuracy
    answers = out["answers"]
    assert set(answers["alone"]) == {"X", "Y"} and answers["alone"]["X"]["Y"]["n"] == 2
    assert "X" not in answers["alone"]["X"]  # not on its own probes (that is the strength curve)
    for method in ("uniform", "arrow"):
        for owner, c in answers["library"][method].items():
            other = "Y" if owner == "X" else "X"
            assert c["n"] == 2 and set(c["experts"]) == {other}
            assert c["gold"] / c["n"] == out["library"][method]["accuracy"][owner]
            assert c["gold"] + c["own"] + c["experts"][other] + c["other"] == c["n"]  # one other: no sharing
    assert "whose answers" in printed and "Whose answers" in (tmp_path / "a" / "audit.html").read_text()
    best = strongest(answers)
    said = (
        "No whole-library combination answers"
        if best is None
        else f"{best['share']:.2f} of {best['owner']}'s"
    )
    assert said in reading
    # adapters loralab did not train and no --probe: one line
    assert run_cli([*args, "--out", str(tmp_path / "b")], monkeypatch) == 2
    assert "pass --probe FILE.jsonl" in capsys.readouterr().err
    assert (
        run_cli([*args, "--probe", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "c")], monkeypatch)
        == 2
    )
    assert "--probe" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_audit_tells_apart_experts_that_share_a_name(
    lib: Path,
    probes: Path,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two experts whose meta.json give the same name (two seeds' hop-1 experts, say) are audited apart:
    each under its folder's name, each with its own probes and its own strength curve."""
    rows = read_jsonl(probes, required=("prompt",))
    for folder, src in (("first", "X"), ("second", "Y")):
        shutil.copytree(lib / src, tmp_path / folder)
        (tmp_path / folder / "meta.json").write_text(json.dumps({"name": "hop1"}))
    mine = tmp_path / "mine.jsonl"
    write_jsonl(mine, [{**r, "expert": "first" if r["expert"] == "X" else "second"} for r in rows])
    args = ["audit", str(tmp_path / "first"), str(tmp_path / "second"), "--base", str(tiny_base)]
    args += ["--per-expert", "2", "--method", "uniform"]
    assert run_cli([*args, "--probe", str(mine), "--out", str(tmp_path / "a")], monkeypatch) == 0
    out = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert out["experts"] == ["first", "second"] and out["probes"] == {"first": 2, "second": 2}
    assert [c["expert"] for c in out["strength"]["curves"]] == ["first", "second"]
    assert out["strength"]["curves"][0]["delta_size"] != out["strength"]["curves"][1]["delta_size"]
    # a --probe row labelled by the shared name: one line naming the labels there are, nothing written
    hop1 = tmp_path / "hop1.jsonl"
    write_jsonl(hop1, [{**r, "expert": "hop1"} for r in rows])
    assert run_cli([*args, "--probe", str(hop1), "--out", str(tmp_path / "b")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "expert 'hop1' is not in the library (first, second)" in err and not (tmp_path / "b").exists()
    # folders of the same name too: the experts go by their paths, and a row naming the folder is refused
    for seed in ("s1", "s2"):
        shutil.copytree(lib / "X", tmp_path / seed / "X")
    same = [str(tmp_path / "s1" / "X"), str(tmp_path / "s2" / "X")]
    xs = tmp_path / "x.jsonl"
    write_jsonl(xs, [{**r, "expert": "X"} for r in rows])
    more = ["--base", str(tiny_base), "--per-expert", "2", "--method", "uniform", "--probe"]
    assert run_cli(["audit", *same, *more, str(xs), "--out", str(tmp_path / "c")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"expert 'X' could be any of {same[0]}, {same[1]}" in err and not (tmp_path / "c").exists()
    by_path = tmp_path / "by-path.jsonl"
    write_jsonl(by_path, [{**r, "expert": same[k % 2]} for k, r in enumerate(rows)])
    assert run_cli(["audit", *same, *more, str(by_path), "--out", str(tmp_path / "d")], monkeypatch) == 0
    assert json.loads((tmp_path / "d" / "audit.json").read_text())["experts"] == same


GRID = (Path(__file__).parent / "specs" / "tiny-grid.yaml").read_text()


def test_run_diagnoses_each_cell_and_the_report_shows_it(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from loralab.experiments.plan import stale_diagnostics, stored_rows
    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec
    from loralab.report.build import build_report

    spec = tmp_path / "tiny-grid.yaml"
    spec.write_text(GRID.replace("  - name: ties\n    options: {density: 0.5}\n", "  - name: arrow\n"))
    plan = run(load_spec(spec, "test"), tmp_path / "w", "test", console=Console(quiet=True), probe=False)
    by_method = {c.method: c for c in plan.cells}
    # the two combination cells, and the experts alone that the runner adds as positive controls
    assert set(by_method) == {"uniform", "arrow", "oracle"}
    arrow = json.loads(
        (plan.workdir / "diagnostics" / by_method["arrow"].key / "diagnostics.json").read_text()
    )
    uniform = json.loads(
        (plan.workdir / "diagnostics" / by_method["uniform"].key / "diagnostics.json").read_text()
    )
    assert arrow["parts"] == ["routing", "geometry", "answers"]
    assert arrow["strength"] == {"skipped": "not asked for"}
    # probes: 8 CoT two-hop questions and 8 + 8 one-hop (retention) ones, owned by A->B and B->C
    assert (
        arrow["probes"]["n"] == 24
        and arrow["probes"]["labelled"] == 16
        and arrow["probes"]["two_hop_owned"] == 0
    )
    assert 0 < arrow["routing"]["accuracy"]["all_tokens"] < 1
    assert "skipped" in uniform["routing"] and "summary" in uniform["geometry"]
    assert any("does not compose" in label for label in arrow["verdict"]["labels"])
    assert arrow["version"] == VERSION
    # whose answers, from the cell's own outputs: 8 questions per owner, the two-hop ones owned by no expert;
    # the gold column is the cell's own scoring of those rows
    stored_correct = sum(bool(r["correct"]) for r in stored_rows(plan, by_method["arrow"]))
    for cell in (arrow, uniform):
        by_owner = cell["answers"]["by_owner"]
        assert sorted(by_owner) == sorted([*cell["experts"], "(ac_cot)"])
        assert all(c["n"] == 8 for c in by_owner.values())
        assert set(by_owner["(ac_cot)"]["experts"]) == set(cell["experts"])
    assert sum(c["gold"] for c in arrow["answers"]["by_owner"].values()) == stored_correct
    assert ("crosstalk" in arrow["verdict"]["scores"]) and 0 <= arrow["verdict"]["scores"]["crosstalk"] <= 1
    # a resumed run redoes, from the stored outputs, the diagnostics that are missing or older than this
    # loralab (an older file has no version), and evaluates nothing again
    folder = plan.workdir / "diagnostics"
    old = {k: v for k, v in arrow.items() if k != "version"}
    (folder / by_method["arrow"].key / "diagnostics.json").write_text(
        json.dumps({**old, "routing": {"skipped": "an older loralab"}})
    )
    shutil.rmtree(folder / by_method["uniform"].key)
    assert {c.method for c in stale_diagnostics(plan, ["routing", "geometry"])} == {"uniform", "arrow"}
    assert stale_diagnostics(plan, []) == []
    rows = stored_rows(plan, by_method["arrow"])
    assert len(rows) == 24 and all("id" in r and "example_id" not in r for r in rows)
    older = [
        t.caption for t in build_report(plan.folder).tables if t.title.startswith("Diagnostics per cell")
    ]
    assert "1 of these cells were diagnosed by an older loralab" in older[0]

    def evaluate_again(*_: Any) -> None:
        raise AssertionError("a stored cell was evaluated again")

    monkeypatch.setattr("loralab.experiments.runner.evaluate_job", evaluate_again)
    again = run(load_spec(spec, "test"), tmp_path / "w", "test", console=Console(quiet=True), probe=False)
    assert stale_diagnostics(again, ["routing", "geometry"]) == []
    redone = json.loads((folder / by_method["arrow"].key / "diagnostics.json").read_text())
    assert redone["routing"] == arrow["routing"] and redone["version"] == VERSION
    assert (folder / by_method["uniform"].key / "diagnostics.json").is_file()
    report = build_report(plan.folder)
    assert "older loralab" not in report.markdown()
    titles = [t.title for t in report.tables]
    assert any(t.startswith("Diagnostics per cell") for t in titles)
    assert any(t.startswith("Do the diagnostics predict?") for t in titles)
    assert "does not compose" in report.markdown()
    # `loralab predict` pools the diagnosed cells of several run folders; a cell two runs share (here the
    # same run given twice) is one cell, counted once
    out = tmp_path / "predict.json"
    folders = [str(plan.folder), str(plan.folder)]
    assert run_cli(["predict", *folders, "--json", str(out)], monkeypatch) == 0
    pooled = json.loads(out.read_text())
    diagnosed = [
        c for c in plan.cells if (plan.workdir / "diagnostics" / c.key / "diagnostics.json").is_file()
    ]
    assert len(pooled["cells"]) == len(diagnosed) >= 2
    assert f"({len(diagnosed)} cells shared between the runs counted once)" in capsys.readouterr().out
    assert {c["run"] for c in pooled["cells"]} == {plan.run}
    assert run_cli(["predict", str(tmp_path)], monkeypatch) == 2
    capsys.readouterr()
    # a .json file is replaced (rerun), a folder or a file of another kind is not
    out.write_text("{}")
    assert run_cli(["predict", str(plan.folder), "--json", str(out)], monkeypatch) == 0
    assert len(json.loads(out.read_text())["cells"]) == len(diagnosed)
    capsys.readouterr()
    (tmp_path / "w.json").mkdir()
    assert run_cli(["predict", str(plan.folder), "--json", str(tmp_path / "w.json")], monkeypatch) == 2
    assert f"--json {tmp_path / 'w.json'}: is a folder, a file is written here" in capsys.readouterr().err
    assert run_cli(["predict", str(plan.folder), "--json", str(tmp_path / "notes.txt")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert (
        f"--json {tmp_path / 'notes.txt'}: name a .json file" in err and not (tmp_path / "notes.txt").exists()
    )
    gone = tmp_path / "a-file" / "p.json"
    (tmp_path / "a-file").write_text("x")
    assert run_cli(["predict", str(plan.folder), "--json", str(gone)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"--json {gone}: {tmp_path / 'a-file'} is a file, not a folder" in err and ".tmp" not in err
    plan_before = (plan.folder / "plan.json").read_bytes()  # never over the run's own files
    assert run_cli(["predict", str(plan.folder), "--json", str(plan.folder / "plan.json")], monkeypatch) == 2
    assert f"--json {plan.folder / 'plan.json'}: inside the input" in capsys.readouterr().err
    assert (plan.folder / "plan.json").read_bytes() == plan_before
    aside = plan.db.rename(tmp_path / "aside.sqlite")  # diagnosed cells without their results
    assert run_cli(["predict", str(plan.folder)], monkeypatch) == 2
    assert "no stored results for the diagnosed cells" in capsys.readouterr().err
    aside.rename(plan.db)


def test_prediction_pools_scores_against_each_target() -> None:
    from loralab.evaluation.retention import Rate
    from loralab.report.diagnostics import prediction

    def cell(acc: float, ab: int, bc: int) -> dict[str, Any]:
        metrics = {"retained_ab": Rate(ab, 4), "retained_bc": Rate(bc, 4), "retained_both": Rate(0, 4)}
        return {"accuracy": acc, "metrics": metrics}

    found: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"owner_coefficient": 0.5}, cell(0.0, 1, 4)),
        ({"owner_coefficient": 0.6}, cell(0.0, 2, 3)),
        ({"owner_coefficient": 0.7}, cell(0.0, 3, 2)),
        ({"owner_coefficient": 0.9}, cell(0.0, 4, 1)),
        ({"owner_coefficient": 0.8}, None),  # a diagnosed cell not stored yet is left out
    ]
    rhos = prediction(found)["owner_coefficient"]
    assert rhos["A→B kept"]["rho"] == pytest.approx(1.0) and rhos["A→B kept"]["n"] == 4
    assert rhos["B→C kept"]["rho"] == pytest.approx(-1.0)
    # a constant target (no two-hop answer anywhere) predicts nothing: no rho, not a spurious one
    assert rhos["two-hop accuracy"]["rho"] is None and rhos["both hops retained"]["rho"] is None
    assert prediction(found)["delta_cos"]["A→B kept"]["n"] == 0


def test_answers_are_sorted_by_whose_answer_they_name(tmp_path: Path) -> None:
    vocab = {"hop1": {"Kruthaisle", "Ann"}, "hop2": {"Athens", "Paris"}, "oracle": {"Athens", "Rome"}}
    sorter = Sorter(vocab)
    where, who = "Where was Kruthaisle born?", "Who is Bo's spouse?"
    cases = [
        # the question's own subject is one of hop1's answers: skipped, the next name counts
        ("hop2", where, "Kruthaisle was born in Ann", False, ("expert", ["hop1"])),
        ("hop2", where, "Kruthaisle was born in Paris", False, ("own", [])),
        ("hop2", where, "Paris or Ann", False, ("own", [])),  # the first name counts
        ("hop1", who, "Bo's spouse is ATHENS.", False, ("expert", ["hop2", "oracle"])),  # shared: both
        ("hop1", who, "Annapolis", False, ("other", [])),  # whole words only
        ("hop2", where, "", False, ("other", [])),
        ("hop2", where, "Rome", True, ("gold", [])),  # scored correct: gold, whatever it names
        ("oracle", where, "Kruthaisle", False, ("other", [])),  # only the subject: nothing else named
    ]
    for owner, prompt, said, correct, want in cases:
        assert sorter.sort({"prompt": prompt, "extracted": said, "correct": correct}, owner) == want, said
    rows = [{"prompt": c[1], "extracted": c[2], "correct": c[3]} for c in cases]
    counts = tally(rows, [c[0] for c in cases], sorter, ["hop1", "hop2", "oracle"])
    assert counts["hop2"] == {"n": 5, "gold": 1, "own": 2, "other": 1, "experts": {"hop1": 1, "oracle": 0}}
    assert counts["hop1"] == {"n": 2, "gold": 0, "own": 0, "other": 1, "experts": {"hop2": 1, "oracle": 1}}
    assert counts["oracle"] == {"n": 1, "gold": 0, "own": 0, "other": 1, "experts": {"hop1": 0, "hop2": 0}}
    # an expert named like a category stays a column of its own
    named = tally(rows[:1], ["hop2"], Sorter({"other": {"Ann"}, "hop2": {"Paris"}}), ["other", "hop2"])
    assert named["hop2"] == {"n": 1, "gold": 0, "own": 0, "other": 0, "experts": {"other": 1}}
    # the strongest crosstalk of the whole-library tallies, with the same expert's share alone
    alone = {"hop1": {"hop2": {"n": 4, "gold": 0, "own": 0, "other": 1, "experts": {"hop1": 3, "oracle": 0}}}}
    best = strongest({"library": {"uniform": counts}, "alone": alone})
    assert best is not None
    assert (best["owner"], best["by"], best["count"], best["n"]) == ("hop1", "hop2", 1, 2)
    assert best["share"] == 0.5 and best["alone"] is None  # hop2 alone on hop1's questions: not measured
    counts["hop2"]["experts"]["hop1"] = 3  # now 3 of hop2's 5 questions get hop1's answers
    best = strongest({"library": {"arrow": counts}, "alone": alone})
    assert best is not None and (best["method"], best["owner"], best["by"]) == ("arrow", "hop2", "hop1")
    assert best["share"] == 0.6 and best["alone"] == 0.75
    only_gold = {"hop1": {"n": 2, "gold": 2, "own": 0, "other": 0, "experts": {"hop2": 0}}}
    assert strongest({"library": {"uniform": only_gold}}) is None
    # the vocabulary: the training files' golds (from meta.json) and the probes' golds
    write_jsonl(tmp_path / "ab.train.jsonl", [{"prompt": "p", "gold": "Bo "}, {"prompt": "q", "gold": "Cy"}])
    e = Expert("hop1", tmp_path / "hop1", 1, 1.0, {}, {}, {"data": [str(tmp_path / "ab.train.jsonl")]})
    alien = Expert("alien", tmp_path / "alien", 1, 1.0, {}, {}, {})
    found = vocabularies([e, alien], {0: [{"gold": "Di"}], 1: [{"gold": "Ed"}, {"prompt": "no gold"}]})
    assert found == {"hop1": {"Bo", "Cy", "Di"}, "alien": {"Ed"}}


def test_the_crosstalk_label_and_score() -> None:
    """The verdict's whose-answers label: the largest share of an owned expert's probes answered with another
    expert's answers, labelled from 0.25, scored below it; unowned questions and owners with < 4 probes
    do not count."""

    def diag(by_owner: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {"experts": ["hop1", "hop2"], "answers": {"by_owner": by_owner}}

    row = {"n": 16, "gold": 1, "own": 0, "other": 7, "experts": {"hop1": 8}}
    unowned = {"n": 16, "gold": 0, "own": 0, "other": 0, "experts": {"hop1": 16, "hop2": 0}}
    v = verdict(diag({"hop2": row, "(ac_cot)": unowned}))
    assert "answers hop2's questions with hop1's answers (0.50, 8 of 16)" in v["labels"]
    assert v["scores"]["crosstalk"] == 0.5
    v = verdict(diag({"hop2": {**row, "experts": {"hop1": 3}, "other": 12}}))  # 3 of 16: scored, not labelled
    assert v["scores"]["crosstalk"] == 3 / 16 and not any("answers hop2" in x for x in v["labels"])
    v = verdict(diag({"hop2": {"n": 3, "gold": 0, "own": 0, "other": 0, "experts": {"hop1": 3}}}))  # too few
    assert "crosstalk" not in v["scores"] and v["labels"] == []
    v = verdict(diag({"hop2": {**row, "experts": {"hop1": 0}, "other": 15}}))
    assert v["scores"]["crosstalk"] == 0.0
    assert (
        "crosstalk" not in verdict({"experts": ["hop1"], "answers": {"skipped": "not asked for"}})["scores"]
    )


def test_audit_probes_come_from_the_experts_held_out_data(twohop_dir: Path) -> None:
    from loralab.diagnose.audit import probe_sets

    meta = {"data": [str(twohop_dir / "ab.train.jsonl")]}
    ab = Expert("A-B", Path("/nonexistent/A-B"), 1, 1.0, {}, {}, meta)
    alien = Expert("alien", Path("/nonexistent/alien"), 1, 1.0, {}, {}, {})
    test_rows = read_jsonl(twohop_dir / "ab.test.jsonl", required=("prompt", "gold"))
    sets = probe_sets([ab, alien], None, 3)
    assert list(sets) == [0] and len(sets[0]) == 3  # the alien adapter has no held-out data
    picked = [test_rows[0]["id"], test_rows[len(test_rows) // 2]["id"], test_rows[-1]["id"]]
    assert [r["id"] for r in sets[0]] == picked and {r["expert"] for r in sets[0]} == {"A-B"}
