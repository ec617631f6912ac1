"""The positive controls (issue 18): verdict arithmetic on hand-built store rows, role inference, "not
measured" for a library without an oracle, the between-seed t interval worked by hand, the confounded
marking, the runner's control cells (keyed by content, shared with the spec's own cells, keys of the spec's
cells unchanged), and a real report that opens with the controls."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from loralab.evaluation.retention import Rate
from loralab.evaluation.score import seed_interval, t975, wilson
from loralab.experiments.plan import CellJob, Plan
from loralab.report import controls as pc
from loralab.report.layouts import GENERIC, between_text, build_table, pool
from tests.conftest import run_cli

PAPER = Path(__file__).parents[1] / "experiments" / "paper"
SPECS = Path(__file__).parent / "specs"
ROLES = {"hop1": "hop1", "hop2": "hop2", "oracle": "oracle", "mixed": "mixed"}


# ---------------------------------------------------------------------------
# Hand-built plans and store rows
# ---------------------------------------------------------------------------


def _record(
    library: str, members: list[str], method: str, seed: int, variant: str, file: str
) -> dict[str, Any]:
    return {
        "experiment": "controls-test",
        "point": {"datasets.data.variant": variant},
        "seed": seed,
        "library": library,
        "members": members,
        "roles": {m: ROLES.get(m, "none") for m in members},
        "targets": {m: "mlp" for m in members},
        "method": method,
        "options": {},
        "evaluation": {
            "dataset": "data",
            "split": "test",
            "prompting": "cot",
            "file": file,
            "triplets": "all",
        },
        "datasets": {"data": {"kind": "twohop", "variant": variant, "seed": seed}},
    }


def _control_key(expert: str, task: str, seed: int, variant: str) -> str:
    return f"{variant}-{seed}-{expert}-alone-{task}"


def _cell(library: str, members: list[str], method: str, seed: int = 0, variant: str = "RR") -> CellJob:
    record = _record(library, members, method, seed, variant, "ac_cot.test.jsonl")
    tasks = {"hop1": ["ab"], "hop2": ["bc"], "oracle": ["ac"], "mixed": ["ab", "bc"]}
    record["controls"] = [
        {"expert": m, "role": m, "task": t, "key": _control_key(m, t, seed, variant)}
        for m in members
        for t in tasks.get(m, [])
    ]
    key = f"{variant}-{seed}-{library}-{method}"
    return CellJob(
        key, "test", Path("/none/ac_cot.test.jsonl"), "d", tuple(members), method, {}, library, 128, record
    )


def _control(expert: str, task: str, seed: int = 0, variant: str = "RR") -> CellJob:
    record = _record(f"{expert} alone", [expert], "oracle", seed, variant, f"{task}.test.jsonl")
    record["control"] = {"expert": expert, "role": expert, "task": task}
    key = _control_key(expert, task, seed, variant)
    return CellJob(
        key,
        "test",
        Path(f"/none/{task}.test.jsonl"),
        "d",
        (expert,),
        "oracle",
        {},
        record["library"],
        48,
        record,
    )


def _plan(cells: list[CellJob], tmp_path: Path) -> Plan:
    return Plan("controls-test", tmp_path, {}, {}, cells)


def _row(correct: int, n: int, **metrics: Rate) -> dict[str, Any]:
    return {"correct": correct, "n": n, "metrics": metrics}


def _by(results: list[pc.ControlResult]) -> dict[tuple[str, str], pc.ControlResult]:
    return {(r.name, r.subject): r for r in results}


# ---------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------


def test_verdicts_by_hand() -> None:
    assert pc.verdict(19, 20, 0.95) == "pass"  # 95.0% reaches 95%
    assert pc.verdict(18, 20, 0.95) == "fail"  # 90.0%
    assert pc.verdict(10, 10, 0.95) == "too few questions (n<20)"  # 100%, but n = 10
    assert pc.verdict(0, 0, 0.95) == "not measured"
    assert pc.verdict(16, 20, 0.80) == "pass" and pc.verdict(15, 20, 0.80) == "fail"
    assert pc.verdict(3, 40, None) == "reported, no threshold: this is the familiarity claim itself"


def test_between_seed_t_interval_by_hand() -> None:
    # [0.1, 0.2, 0.3]: mean 0.2, sd 0.1 (k - 1 = 2), t_{0.975,2} = 4.303 -> 4.303 * 0.1 / sqrt(3) = 0.2484
    mean, half = seed_interval([0.1, 0.2, 0.3]) or (0.0, 0.0)
    assert mean == pytest.approx(0.2) and half == pytest.approx(0.2484, abs=1e-4)
    assert seed_interval([0.5]) is None  # one seed: no between-seed interval
    assert t975(2) == pytest.approx(4.303, abs=1e-3) and t975(1) == pytest.approx(12.706, abs=1e-3)
    assert t975(40) == pytest.approx(2.021, abs=1e-3)  # beyond the table: the expansion
    assert between_text([0.1, 0.2, 0.3]) == "20.0 ± 24.8 [0.0, 44.8]"  # the interval clipped at 0


def test_controls_arithmetic_not_measured_and_confounded(tmp_path: Path) -> None:
    """RR: hop1 alone 19/20 (pass), hop2 alone 18/20 (fail); the 2-combination keeps A->B 17/20 and B->C
    15/20 under Uniform, 16/20 and 16/20 under Arrow. No oracle and no mixed expert: PC2, PC3 and PC5 are not
    measured, which is not a failure."""
    cells = [
        _cell("2-combination", ["hop1", "hop2"], "uniform"),
        _cell("2-combination", ["hop1", "hop2"], "arrow"),
        _control("hop1", "ab"),
        _control("hop2", "bc"),
    ]
    stored = {
        "RR-0-2-combination-uniform": _row(2, 40, retained_ab=Rate(17, 20), retained_bc=Rate(15, 20)),
        "RR-0-2-combination-arrow": _row(5, 40, retained_ab=Rate(16, 20), retained_bc=Rate(16, 20)),
        _control_key("hop1", "ab", 0, "RR"): _row(19, 20),
        _control_key("hop2", "bc", 0, "RR"): _row(18, 20),
    }
    plan = _plan(cells, tmp_path)
    results = pc.compute_controls(plan, stored)
    by = _by(results)
    hop1, hop2 = by[("PC1", "hop1 alone on A→B")], by[("PC1", "hop2 alone on B→C")]
    assert (hop1.k, hop1.n, hop1.verdict) == (19, 20, "pass")
    assert (hop2.k, hop2.n, hop2.verdict) == (18, 20, "fail")
    # Wilson of 19/20 by hand: centre (0.95 + 1.96^2/40) / (1 + 1.96^2/20) = 0.8775, half 0.1136
    lo, hi = wilson(19, 20)
    assert (lo, hi) == pytest.approx((0.7639, 0.9911), abs=1e-4)
    kept = {s: (r.k, r.n, r.verdict) for (name, s), r in by.items() if name == "PC4"}
    assert kept == {
        "2-combination · Uniform: A→B kept": (17, 20, "pass"),
        "2-combination · Uniform: B→C kept": (15, 20, "fail"),
        "2-combination · Arrow: A→B kept": (16, 20, "pass"),  # exactly 80%
        "2-combination · Arrow: B→C kept": (16, 20, "pass"),
    }
    for name in ("PC2", "PC3", "PC5"):
        (absent,) = [r for r in results if r.name == name]
        assert absent.verdict == "not measured" and absent.verdict_text().startswith("not measured: no ")
    assert [r.name for r in results] == ["PC1", "PC1", "PC2", "PC3", "PC4", "PC4", "PC4", "PC4", "PC5"]
    assert pc.summary(results) == "Controls: 4 pass, 2 fail, 3 not measured."
    # a run without a two-hop library is told its numbers are unchecked, not that all is well
    none = pc.summary([])
    assert none.startswith("Controls: not computed.") and "unchecked" in none

    groups = pool(plan, stored)
    pc.mark_confounded(groups, results)
    uniform, arrow = groups
    assert uniform.confounded == [
        "PC1 fails: hop2 alone on B→C 90.0% < 95% (n=20)",
        "its own B→C retention 75.0% < 80% (n=20)",
    ]
    assert arrow.confounded == ["PC1 fails: hop2 alone on B→C 90.0% < 95% (n=20)"]
    table = build_table(GENERIC, groups)
    assert table.header[-1] == "Confounded" and table.body[0][2].endswith(" †")
    assert (
        table.body[0][-1].startswith("Uniform: PC1 fails: hop2") and "Arrow: PC1 fails" in table.body[0][-1]
    )
    assert "† confounded" in table.caption


def test_pc2_pc3_pc5_and_the_familiarity_threshold(tmp_path: Path) -> None:
    """FF and RR each with the 3-combination under Arrow and the oracle and mixed experts alone. PC3 has a
    threshold only on RR; a 3-combination cell whose oracle fails PC2 is confounded, a 2-combination is not."""
    cells = []
    stored: dict[str, dict[str, Any]] = {}
    for variant, oracle in (("FF", 17), ("RR", 19)):
        cells += [
            _cell("3-combination", ["hop1", "hop2", "oracle"], "arrow", variant=variant),
            _cell("mixed alone", ["mixed"], "oracle", variant=variant),
        ]
        stored[f"{variant}-0-3-combination-arrow"] = _row(15, 20)
        stored[f"{variant}-0-mixed alone-oracle"] = _row(1, 20)
        for expert, task, k in (("hop1", "ab", 20), ("hop2", "bc", 20), ("oracle", "ac", oracle)):
            cells.append(_control(expert, task, variant=variant))
            stored[_control_key(expert, task, 0, variant)] = _row(k, 20)
        for task, k in (("ab", 18), ("bc", 9)):
            cells.append(_control("mixed", task, variant=variant))
            stored[_control_key("mixed", task, 0, variant)] = _row(k, 20 if task == "ab" else 10)
    plan = _plan(cells, tmp_path)
    results = pc.compute_controls(plan, stored)
    ff = {(r.name, r.subject): r for r in results if r.context == "FF"}
    rr = {(r.name, r.subject): r for r in results if r.context == "RR"}
    assert ff[("PC3", "3-combination · Arrow")].threshold is None
    assert ff[("PC3", "3-combination · Arrow")].verdict.startswith("reported, no threshold")
    assert rr[("PC3", "3-combination · Arrow")].verdict == "pass"  # 15/20 = 75% >= 70%
    assert ff[("PC2", "oracle alone on A→C")].verdict == "fail"  # 17/20 = 85% < 90%
    assert rr[("PC2", "oracle alone on A→C")].verdict == "pass"  # 19/20 = 95%
    assert ff[("PC5", "mixed alone on A→B")].verdict == "pass"  # 18/20 = 90%
    assert ff[("PC5", "mixed alone on B→C")].verdict == "too few questions (n<20)"  # n = 10
    assert [r.verdict for r in results if r.name == "PC4"] == ["not measured", "not measured"]
    groups = pool(plan, stored)
    pc.mark_confounded(groups, results)
    confounded = {(pc.evaluated_variant(g.record), g.record["library"]): g.confounded for g in groups}
    assert confounded == {
        ("FF", "3-combination"): ["PC2 fails: oracle alone on A→C 85.0% < 90% (n=20)"],
        ("FF", "mixed alone"): [],
        ("RR", "3-combination"): [],
        ("RR", "mixed alone"): [],
    }


def test_controls_per_seed_and_pooled(tmp_path: Path) -> None:
    """Three seeds of hop1 alone: 18, 19 and 20 of 20 pool to 57/60 (95%: pass); each seed is shown and
    the between-seed interval is the t interval of 0.90, 0.95, 1.00."""
    cells = []
    stored: dict[str, dict[str, Any]] = {}
    for seed, k in ((0, 18), (1, 19), (2, 20)):
        cells += [_cell("2-combination", ["hop1", "hop2"], "uniform", seed), _control("hop1", "ab", seed)]
        stored[_control_key("hop1", "ab", seed, "RR")] = _row(k, 20)
        stored[f"RR-{seed}-2-combination-uniform"] = _row(k - 10, 20)
    plan = _plan(cells, tmp_path)
    results = pc.compute_controls(plan, stored)
    hop1 = _by(results)[("PC1", "hop1 alone on A→B")]
    assert (hop1.k, hop1.n, hop1.verdict, hop1.seed_values()) == (57, 60, "pass", [0.9, 0.95, 1.0])
    assert _by(results)[("PC1", "hop2 alone on B→C")].verdict_text() == (
        "not measured: pending: its cells are not done yet"
    )
    table = pc.controls_table(results)
    assert table.header[-2:] == ["Each seed (%)", "Mean ± t [between-seed 95%]"]
    # 0.95 ± 4.303 * 0.05 / sqrt(3) = 0.95 ± 0.1242
    assert table.body[0][-2:] == ["0: 90.0, 1: 95.0, 2: 100.0", "95.0 ± 12.4 [82.6, 100.0]"]
    (group,) = pool(plan, stored)
    assert group.per_seed == {0: (8, 20), 1: (9, 20), 2: (10, 20)} and (group.correct, group.n) == (27, 60)


# ---------------------------------------------------------------------------
# Roles and the runner's control cells
# ---------------------------------------------------------------------------

ROLE_SPEC = """
name: roles
bases: [default]
datasets:
  rr: {kind: twohop, variant: RR}
  fam: {kind: setup, setup: familiarity-RR}
  bridge: {kind: setup, setup: setup-2}
  graph: {kind: graph}
experts:
  ab: {train: [{dataset: rr, task: ab}]}
  bc: {train: [{dataset: rr, file: bc.train.jsonl}]}
  ac: {train: [{dataset: rr, task: ac}]}
  cot: {train: [{dataset: rr, task: ac_cot}]}
  both: {train: [{dataset: rr, task: ab}, {dataset: rr, task: bc}]}
  ab_ac: {train: [{dataset: rr, task: ab}, {dataset: rr, task: ac}]}
  lora1: {train: [{dataset: fam, file: lora1.train.jsonl}]}
  lora2: {train: [{dataset: fam, file: lora2.train.jsonl}]}
  lora3: {train: [{dataset: fam, file: lora3.train.jsonl}]}
  lora4: {train: [{dataset: fam, file: lora4.train.jsonl}]}
  bridged: {train: [{dataset: bridge, file: lora1.train.jsonl}]}
  declared: {train: [{dataset: bridge, file: lora1.train.jsonl}], role: hop1}
  rel1: {train: [{dataset: graph, task: rel1}]}
libraries: {all: [ab, bc]}
methods: [{name: uniform}]
evaluations: [{dataset: rr}]
"""


def test_roles_are_inferred_from_training_files(tmp_path: Path) -> None:
    from loralab.experiments.spec import control_tasks, load_spec, role_of

    path = tmp_path / "roles.yaml"
    path.write_text(ROLE_SPEC)
    spec = load_spec(path)
    roles = {e: role_of(spec, e) for e in spec.experts}
    assert roles == {
        "ab": "hop1",
        "bc": "hop2",
        "ac": "oracle",
        "cot": "oracle",
        "both": "mixed",
        "ab_ac": "none",
        "lora1": "hop1",  # familiarity-RR: R1
        "lora2": "hop2",
        "lora3": "oracle",  # R12 CoT
        "lora4": "mixed",  # R1 + R2
        "bridged": "none",  # setup-2's LoRA 1: R1 + B_F
        "declared": "hop1",  # the same files, its role written out
        "rel1": "none",  # not a two-hop dataset
    }
    # the oracle is asked A->C directly (the paper's LoRA 3), unless it only ever saw the CoT form
    assert control_tasks(spec, "ac") == ("ac",) and control_tasks(spec, "cot") == ("ac_cot",)
    assert control_tasks(spec, "both") == ("ab", "bc") and control_tasks(spec, "ab_ac") == ()


def test_a_role_needs_a_two_hop_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        ROLE_SPEC.replace(
            "rel1: {train: [{dataset: graph, task: rel1}]}",
            "rel1: {train: [{dataset: graph, task: rel1}], role: hop2}",
        )
    )
    assert run_cli(["validate", str(path)], monkeypatch) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "role: hop2" in t)
    assert (
        f"bad.yaml:{line}: experts.rel1.role: a control role needs a two-hop or setup training dataset" in err
    )
    assert "Traceback" not in err
    path.write_text(ROLE_SPEC.replace("role: hop1", "role: hop3"))
    assert run_cli(["validate", str(path)], monkeypatch) == 2
    assert "experts.declared.role" in capsys.readouterr().err


def test_the_runner_adds_control_cells_keyed_by_content(tiny_base: Path, tmp_path: Path) -> None:
    """Table 6 at the test scale: per variant, LoRA 1 alone on ab.test, LoRA 2 on bc.test, LoRA 4 on both;
    LoRA 3 (trained on R12 CoT) alone on ac_cot.test is the spec's own "oracle expert" cell, so it is not
    added twice."""
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec

    p = plan(load_spec(PAPER / "table6-familiarity.yaml", "test"), tmp_path / "w", "test")
    main = [c for c in p.cells if "control" not in c.record]
    added = [c for c in p.cells if "control" in c.record]
    assert len(main) == 18 and len(added) == 3 * 4 and len({c.key for c in p.cells}) == 30
    assert sorted({(c.record["control"]["expert"], c.data.name) for c in added}) == [
        ("lora1", "ab.test.jsonl"),
        ("lora2", "bc.test.jsonl"),
        ("lora4", "ab.test.jsonl"),
        ("lora4", "bc.test.jsonl"),
    ]
    assert {c.method for c in added} == {"oracle"} and {c.max_new_tokens for c in added} == {48}
    oracle = next(c for c in main if c.library == "oracle expert")
    (ref,) = oracle.record["controls"]
    assert (ref["expert"], ref["role"], ref["task"], ref["key"]) == ("lora3", "oracle", "ac_cot", oracle.key)
    three = next(c for c in main if c.library == "3-combination")
    assert [r["task"] for r in three.record["controls"]] == ["ab", "bc", "ac_cot"]
    assert three.record["roles"] == {"lora1": "hop1", "lora2": "hop2", "lora3": "oracle"}


def test_roles_do_not_change_the_keys_of_a_specs_cells(tiny_base: Path, tmp_path: Path) -> None:
    """Declaring roles (bridge-ablation.yaml now does) adds control cells but keeps every stored cell valid."""
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec

    text = (PAPER / "bridge-ablation.yaml").read_text()
    without = tmp_path / "bridge-ablation.yaml"
    without.write_text("\n".join(line for line in text.splitlines() if "role:" not in line) + "\n")
    with_roles = plan(load_spec(PAPER / "bridge-ablation.yaml", "test"), tmp_path / "w", "test")
    plain = plan(load_spec(without, "test"), tmp_path / "w", "test")
    main = [c.key for c in with_roles.cells if "control" not in c.record]
    assert main == [c.key for c in plain.cells if "control" not in c.record]
    # setup-0, 4, 5 infer hop roles from their files (R1 or R2 alone); declared, all nine setups have them
    assert len(with_roles.cells) - len(main) == 9 * 2 and len(plain.cells) - len(main) == 4


# ---------------------------------------------------------------------------
# A real report opens with the controls
# ---------------------------------------------------------------------------


def test_the_report_opens_with_the_controls(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    args = ["run", str(SPECS / "report-seeds.yaml"), "--scale", "test", "--workdir", str(work), "--no-probe"]
    assert run_cli(args, monkeypatch) == 0
    folder = work / "runs" / "report-seeds.test"
    capsys.readouterr()
    assert run_cli(["report", str(folder)], monkeypatch) == 0
    out = capsys.readouterr().out
    markdown = (folder / "report" / "report.md").read_text()
    assert out.startswith(markdown)
    lines = [line for line in markdown.splitlines() if line.strip()]
    # a test-scale report first cautions that it measures nothing, then opens with the controls
    assert lines[0] == "# report-seeds.test" and lines[1].startswith(
        "> **Caution: this run used scale `test`"
    )
    lines = [lines[0], *lines[2:]]
    assert lines[1] == "## Positive controls"
    assert lines[2].startswith(
        "| Context | Control | Measured | Value (%) | 95% Wilson | n | Threshold | Verdict |"
    )
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[4:9]]
    # two seeds of 4 triplets x 2 test templates: n = 16 per expert, too few for a verdict
    assert [(r[1], r[2], r[5], r[7]) for r in rows] == [
        ("PC1", "ab alone on A→B", "16", "too few questions (n<20)"),
        ("PC1", "bc alone on B→C", "16", "too few questions (n<20)"),
        ("PC2", "-", "0", "not measured: no oracle expert in a two-hop library"),
        ("PC3", "-", "0", "not measured: no library of hop1 + hop2 + oracle evaluated under Arrow"),
        ("PC4", "2-combination · Uniform: A→B kept", "16", "too few questions (n<20)"),
    ]
    assert (
        markdown.index("## Positive controls") < markdown.index("cells done") < markdown.index("### Results")
    )
    assert "8 of 8 cells done" in markdown  # 4 cells of the spec and 4 controls (2 experts x 2 seeds)
    assert "### Seeds: each seed's accuracy" in markdown and "t_{0.975,k-1}" in markdown
    html = (folder / "report" / "report.html").read_text()
    assert html.index("Positive controls") < html.index("Results, accuracy")
    tidy = list(csv.DictReader(io.StringIO((folder / "report" / "report.csv").read_text())))
    sections = [r["section"] for r in tidy]
    assert sections == ["control"] * sections.count("control") + ["cell"] * 2 and sections[0] == "control"
    first = tidy[0]
    assert (first["control"], first["subject"], first["seeds"], first["threshold"]) == (
        "PC1",
        "ab alone on A→B",
        "0 1",
        "0.9500",
    )
    assert len(first["seed_values"].split()) == 2 and first["seed_t_halfwidth"] != ""


def test_a_plan_written_before_the_controls_says_how_to_add_them(tmp_path: Path) -> None:
    """Records without roles (plan.json of an older loralab): every control is "not measured" with the fix;
    a combination's own retention still confounds it."""
    cell = _cell("2-combination", ["hop1", "hop2"], "uniform")
    del cell.record["roles"], cell.record["controls"]
    plan = _plan([cell], tmp_path)
    stored = {cell.key: _row(0, 40, retained_ab=Rate(0, 20), retained_bc=Rate(0, 20))}
    results = pc.compute_controls(plan, stored)
    assert [r.name for r in results] == ["PC1", "PC2", "PC3", "PC4", "PC5"]
    assert {r.verdict_text() for r in results} == {f"not measured: {pc.OLD_PLAN}"}
    groups = pool(plan, stored)
    pc.mark_confounded(groups, results)
    # its own retention still counts: a combination that forgot both hops is confounded
    assert groups[0].confounded == [
        "its own A→B retention 0.0% < 80% (n=20)",
        "its own B→C retention 0.0% < 80% (n=20)",
    ]


# ---------------------------------------------------------------------------
# Graph libraries (Table 11): roles relative to the composition asked
# ---------------------------------------------------------------------------

GRAPH_SPEC = """
name: graph-roles
bases: [default]
datasets:
  graph: {kind: graph}
  rr: {kind: twohop, variant: RR}
experts:
  rel1: {train: [{dataset: graph, task: rel1}]}
  rel2: {train: [{dataset: graph, task: rel2}]}
  rel3: {train: [{dataset: graph, task: rel3}]}
  rel4: {train: [{dataset: graph, task: rel4}]}
  rel3_rel4: {train: [{dataset: graph, task: rel3_rel4_cot}]}
  rel3_and_4: {train: [{dataset: graph, task: rel3}, {dataset: graph, task: rel4}]}
  ab: {train: [{dataset: rr, task: ab}]}
libraries: {all: [rel1, rel2, rel3, rel4, rel3_rel4, rel3_and_4]}
methods: [{name: uniform}]
evaluations:
  - {dataset: graph, split: test, prompting: cot}
  - {dataset: graph, split: dev, prompting: cot, file: rel3_rel4_cot.dev.jsonl}
  - {dataset: graph, split: test, prompting: direct, file: rel3.test.jsonl}
"""


def test_a_graph_experts_role_is_read_from_the_composition_asked(tmp_path: Path) -> None:
    from loralab.experiments.spec import control_tasks, is_twohop, load_spec, role_of

    path = tmp_path / "graph.yaml"
    path.write_text(GRAPH_SPEC)
    spec = load_spec(path)
    held_out, rel34, atomic = spec.evaluations
    names = ["rel1", "rel2", "rel3", "rel4", "rel3_rel4", "rel3_and_4", "ab"]
    assert [role_of(spec, e, held_out) for e in names] == [
        "hop1",  # Rel1->Rel2: Rel1 is its first hop
        "hop2",
        "none",
        "none",
        "none",  # a composition expert of another pair
        "none",
        "none",  # a two-hop expert has no role in a graph's composition
    ]
    assert [role_of(spec, e, rel34) for e in names] == [
        "none",
        "none",
        "hop1",
        "hop2",
        "oracle",  # trained on Rel3->Rel4 (CoT) alone
        "mixed",  # Rel3 and Rel4 in one adapter
        "none",
    ]
    assert [role_of(spec, e) for e in names[:-1]] == ["none"] * 6  # no composition asked, no role
    assert role_of(spec, "ab") == "hop1" and role_of(spec, "ab", atomic) == "hop1"  # two-hop as before
    assert control_tasks(spec, "rel3_rel4", rel34) == ("ac_cot",)
    assert control_tasks(spec, "rel3_and_4", rel34) == ("ab", "bc")
    assert is_twohop(spec, held_out) and is_twohop(spec, rel34) and not is_twohop(spec, atomic)


def test_a_graph_cell_gets_control_cells_on_its_relations(tmp_path: Path) -> None:
    from loralab.experiments.spec import Cell, MethodRef, control_cells, load_spec

    path = tmp_path / "graph.yaml"
    path.write_text(GRAPH_SPEC)
    spec = load_spec(path)
    for ev, expected in [
        (spec.evaluations[0], [("rel1", "hop1", "rel1.test.jsonl"), ("rel2", "hop2", "rel2.test.jsonl")]),
        (
            spec.evaluations[1],
            [
                ("rel3", "hop1", "rel3.dev.jsonl"),
                ("rel4", "hop2", "rel4.dev.jsonl"),
                ("rel3_rel4", "oracle", "rel3_rel4_cot.dev.jsonl"),
                ("rel3_and_4", "mixed", "rel3.dev.jsonl"),
                ("rel3_and_4", "mixed", "rel4.dev.jsonl"),
            ],
        ),
        (spec.evaluations[2], []),  # an atomic relation's questions are no composition
    ]:
        cell = Cell(spec, {}, "default", "all", MethodRef(name="uniform"), ev, 0)
        got = [
            (c.control.expert, c.control.role, c.evaluation.file) for c in control_cells(cell) if c.control
        ]
        assert got == expected
        for c in control_cells(cell):
            assert c.evaluation.dataset == "graph" and c.method.name == "oracle"
            assert c.evaluation.prompting == ("cot" if "_cot" in str(c.evaluation.file) else "direct")


def test_graph_retention_asks_each_questions_subject_and_middle(tmp_path: Path) -> None:
    """By hand: two Rel1->Rel2 questions (units 0 and 1) whose subjects A1, A2 share the middle B1; Rel1 asked
    about A1, A2 (not A3), Rel2 about B1 once per question's unit (not B2)."""
    from loralab.errors import LoralabError
    from loralab.evaluation.retention import by_triplet, retention_metrics, retention_sets
    from loralab.worlds.jsonl import write_jsonl

    def q(task: str, unit: int, subject: str, middle: str = "") -> dict[str, Any]:
        return {
            "id": f"{task}-{subject}",
            "task": task,
            "unit": unit,
            "subject": subject,
            "middle": middle,
            "prompt": f"{task} {subject}?",
            "answer": "x",
            "gold": "x",
            "format": "direct",
        }

    write_jsonl(
        tmp_path / "rel1_rel2_cot.test.jsonl",
        [q("rel1_rel2_cot", 0, "A1", "B1"), q("rel1_rel2_cot", 1, "A2", "B1")],
    )
    write_jsonl(tmp_path / "rel1.test.jsonl", [q("rel1", 0, "A1"), q("rel1", 1, "A2"), q("rel1", 2, "A3")])
    write_jsonl(tmp_path / "rel2.test.jsonl", [q("rel2", 5, "B1"), q("rel2", 6, "B2")])
    (first, hop1), (second, hop2) = retention_sets(tmp_path / "rel1_rel2_cot.test.jsonl")
    assert (first, second) == ("rel1.test", "rel2.test")
    assert [(r["subject"], r["task"], r["triplet"]) for r in hop1] == [("A1", "ab", 0), ("A2", "ab", 1)]
    assert [(r["subject"], r["task"], r["triplet"]) for r in hop2] == [("B1", "bc", 0), ("B1", "bc", 1)]
    assert retention_sets(tmp_path / "rel1.test.jsonl") == []  # not a composition
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("rel1.test.jsonl", "rel2.test.jsonl"):
        (bad / f).write_text((tmp_path / f).read_text())
    write_jsonl(bad / "rel1_rel2.test.jsonl", [{**q("rel1_rel2", 0, "A1", "B1"), "unit": "zero"}])
    with pytest.raises(
        LoralabError, match=r"rel1_rel2\.test\.jsonl: a graph composition row without an integer"
    ):
        retention_sets(bad / "rel1_rel2.test.jsonl")
    (tmp_path / "rel2.test.jsonl").unlink()
    assert retention_sets(tmp_path / "rel1_rel2_cot.test.jsonl") == []  # a sibling missing
    # scored: unit 0 keeps both hops and is right; unit 1 loses Rel1 -> given both: 1 of 1
    records = [
        {"task": "rel1_rel2_cot", "triplet": 0, "correct": True},
        {"task": "rel1_rel2_cot", "triplet": 1, "correct": False},
        {"task": "ab", "triplet": 0, "correct": True},
        {"task": "ab", "triplet": 1, "correct": False},
        {"task": "bc", "triplet": 0, "correct": True},
        {"task": "bc", "triplet": 1, "correct": True},
    ]
    m = retention_metrics(records)
    assert (m["twohop"].k, m["twohop"].n) == (1, 2)
    assert (m["retained_ab"].k, m["retained_ab"].n) == (1, 2) and (
        m["retained_bc"].k,
        m["retained_bc"].n,
    ) == (2, 2)
    assert (m["retained_both"].k, m["retained_both"].n) == (1, 2)
    assert (m["twohop_given_both"].k, m["twohop_given_both"].n) == (1, 1)
    assert by_triplet(records) == {"both": {"right": 1, "wrong": 0}, "one": {"right": 0, "wrong": 1}}
    # a graph cell stored before its retention existed has no triplet: counted as unknown, not a traceback
    assert by_triplet([{"task": "rel1_rel2_cot", "triplet": None, "correct": True}]) == {
        "unknown": {"right": 1, "wrong": 0}
    }


def _graph_cell(roles: dict[str, str], marker: bool) -> CellJob:
    members = list(roles)
    record = _record("graph library", members, "arrow", 0, "disjoint", "rel1_rel2_cot.test.jsonl")
    record["datasets"] = {"data": {"kind": "graph", "variant": "disjoint", "seed": 0}}
    record["roles"], record["controls"] = roles, []
    if marker:
        record["retention"] = "graph-1"
    path = Path("/none/rel1_rel2_cot.test.jsonl")
    return CellJob("g", "test", path, "d", tuple(members), "arrow", {}, "graph library", 128, record)


def test_a_graph_plan_from_before_its_controls_says_rerun(tmp_path: Path) -> None:
    """A Table 11 plan written before graph roles existed (every role none, no retention marker) is told to
    rerun, not that its library lacks hop experts; a current graph 3-combination gets PC3's 70% threshold."""
    old = pc.compute_controls(_plan([_graph_cell({"rel1": "none", "rel2": "none"}, False)], tmp_path), {})
    assert {r.verdict_text() for r in old} == {f"not measured: {pc.OLD_PLAN}"}
    new = pc.compute_controls(
        _plan([_graph_cell({"rel1": "hop1", "rel2": "hop2", "rel1_rel2": "oracle"}, True)], tmp_path), {}
    )
    pc3 = [r for r in new if r.name == "PC3"]
    assert [(r.threshold, r.verdict_text()) for r in pc3] == [
        (0.70, "not measured: pending: its cells are not done yet")
    ]


def test_graph_retention_is_in_a_composition_cells_key_only(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bumping the graph retention version re-keys the composition's cells, not a graph atomic file's; the
    spec's summary names the roles read from each evaluation."""
    from loralab.experiments import plan as plan_module
    from loralab.experiments.spec import load_spec

    path = tmp_path / "g.yaml"
    text = (SPECS / "graph-controls.yaml").read_text()
    path.write_text(
        text.replace(
            "  - {dataset: graph, split: test, prompting: cot}\n",
            "  - {dataset: graph, split: test, prompting: cot}\n"
            "  - {dataset: graph, split: test, prompting: direct, file: rel3.test.jsonl}\n",
        )
    )

    def keys() -> dict[tuple[str, str], str]:
        p = plan_module.plan(load_spec(path, "test"), tmp_path / "w", "test")
        return {(c.data.name, c.method): c.key for c in p.cells if "control" not in c.record}

    now = keys()
    monkeypatch.setattr(plan_module, "GRAPH_RETENTION", "graph-0")
    before = keys()
    assert sorted(now) == sorted(before) and len(now) == 4
    for (file, method), key in now.items():
        assert (key == before[(file, method)]) == (file == "rel3.test.jsonl"), file
    assert run_cli(["validate", str(path), "--scale", "test"], monkeypatch) == 0
    # hop1 / hop2 where Rel1->Rel2 is asked, none where rel3.test is
    assert "Roles: rel1: hop1 or none, rel2: hop2 or none, rel1_rel4: none." in capsys.readouterr().out


def test_a_graph_run_reports_its_controls(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Table 11's shape at the test scale: the Rel1 and Rel2 experts alone on their own held-out questions,
    the library's retention of each relation about the asked entities (4 paths per composition, 2 test
    templates each)."""
    work = tmp_path / "work"
    args = [
        "run",
        str(SPECS / "graph-controls.yaml"),
        "--scale",
        "test",
        "--workdir",
        str(work),
        "--no-probe",
    ]
    assert run_cli(args, monkeypatch) == 0
    folder = work / "runs" / "graph-controls.test"
    capsys.readouterr()
    assert run_cli(["report", str(folder)], monkeypatch) == 0
    markdown = (folder / "report" / "report.md").read_text()
    lines = [line for line in markdown.splitlines() if line.startswith("| disjoint")]
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    assert [(r[1], r[2], r[5]) for r in rows[:7]] == [
        ("PC1", "rel1 alone on Rel1", "16"),  # every Rel1 fact: paths of Rel1->Rel2 and Rel1->Rel4
        ("PC1", "rel2 alone on Rel2", "24"),  # Rel1->Rel2, Rel3->Rel2 and Rel5->Rel2's paths
        # retention asks only the 4 Rel1->Rel2 paths' entities: 4 x 2 templates per hop
        ("PC2", "-", "0"),
        ("PC3", "-", "0"),
        ("PC4", "3 LoRAs · Uniform: Rel1 (A→B) kept", "8"),
        ("PC4", "3 LoRAs · Uniform: Rel2 (B→C) kept", "8"),
        ("PC4", "3 LoRAs · Arrow: Rel1 (A→B) kept", "8"),
    ]
    assert "4 of 4 cells done" in markdown  # the library's two cells and two controls
    # Arrow's diagnostics label the Rel1 / Rel2 questions with their owners (the rel1 / rel2 experts)
    diag = [line for line in markdown.splitlines() if line.startswith("| arrow | 3 LoRAs |")]
    assert len(diag) == 1
    owner = diag[0].strip("|").split(" | ")[5].strip()
    assert 0.0 <= float(owner) <= 1.0
