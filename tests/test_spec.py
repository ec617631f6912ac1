"""Experiment specs: grid expansion counted by hand, bad input named by file and line, scales, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from loralab.errors import LoralabError
from loralab.experiments.spec import SCALES, apply_scale, check_spec, expand, load_spec
from tests.conftest import run_cli

PAPER = Path(__file__).resolve().parents[1] / "experiments" / "paper"

GOOD = """\
name: small
bases: [default, test]
datasets:
  rr: {kind: twohop, variant: RR, triplets: 20}
  s2: {kind: setup, setup: setup-2}
experts:
  ab: {train: [{dataset: rr, task: ab}], lora: {r: 4}}
  bc: {train: [{dataset: rr, task: bc}]}
  l1: {train: [{dataset: s2, file: lora1.train.jsonl}]}
libraries:
  hops: [ab, bc]
  all: [ab, bc, l1]
methods:
  - name: uniform
  - name: ties
    options: {density: 0.5}
  - name: arrow
evaluations:
  - {dataset: rr, prompting: cot}
  - {dataset: rr, prompting: direct, split: dev}
seeds: [0, 1]
grid:
  datasets.rr.variant: [FF, HH, RR]
  methods.1.options.density: [0.2, 0.5]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(LoralabError) as exc:
        load_spec(write(tmp_path, text))
    return str(exc.value)


def test_expansion_count_by_hand(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    cells = expand(spec)
    # grid 3 x 2 = 6 points; each 2 bases x 2 libraries x 3 methods x 2 evaluations x 2 seeds = 48
    assert len(cells) == 6 * 48 == 288
    assert {c.spec.datasets["rr"].variant for c in cells} == {"FF", "HH", "RR"}  # type: ignore[union-attr]
    ties = [c for c in cells if c.method.name == "ties"]
    assert sorted({c.method.options["density"] for c in ties}) == [0.2, 0.5]
    assert all(c.method.options == {} for c in cells if c.method.name == "uniform")
    assert {c.point["datasets.rr.variant"] for c in ties if c.method.options["density"] == 0.2} == {
        "FF",
        "HH",
        "RR",
    }
    assert spec.experts["ab"].lora.r == 4 and spec.experts["bc"].lora.r == 16
    # no grid: the plain product
    no_grid = load_spec(write(tmp_path, GOOD.split("grid:")[0]))
    assert len(expand(no_grid)) == 48


@pytest.mark.parametrize(
    ("edit", "line", "fragment"),
    [
        (
            (
                "  rr: {kind: twohop, variant: RR, triplets: 20}",
                "  rr: {kind: twohop, variant: RR, tripletz: 20}",
            ),
            4,
            "datasets.rr.twohop.tripletz: unknown key",
        ),
        (("seeds: [0, 1]", "seeds: [0, one]"), 21, "seeds.1:"),
        (("seeds: [0, 1]", "seeds: [1, 1]"), 21, "seeds: the seeds must be distinct"),
        (("seeds: [0, 1]", "seeds: [0, -1]"), 21, "seeds.1: Input should be greater than or equal to 0"),
        (("seeds: [0, 1]", "seeds: [0, true]"), 21, "seeds.1: Input should be a valid integer"),
        (("seeds: [0, 1]", "seeds: [0, 99999999999999999999]"), 21, "seeds.1: Input should be less than"),
        (("name: small", "name: ../../escape"), 1, "name: '../../escape' is not a plain name"),
        (("name: small", "name: a b/c"), 1, "name: 'a b/c' is not a plain name"),
        (("  - name: arrow", "  - name: arow"), 17, "methods.2.name: unknown method 'arow'"),
        (
            ("    options: {density: 0.5}", "    options: {densty: 0.5}"),
            16,
            "methods.1.options.densty: method ties",
        ),
        (("  s2: {kind: setup, setup: setup-2}", "  s2: {kind: setup, setup: setup-9}"), 5, "unknown setup"),
        (
            ("  bc: {train: [{dataset: rr, task: bc}]}", "  bc: {train: [{dataset: qq, task: bc}]}"),
            8,
            "experts.bc.train.0.dataset: unknown dataset 'qq'",
        ),
        (
            ("  - {dataset: rr, prompting: cot}", "  - {dataset: r2, prompting: cot}"),
            19,
            "evaluations.0.dataset: unknown dataset 'r2'",
        ),
        (("  all: [ab, bc, l1]", "  all: [ab, bc,\n    l9]"), 13, "libraries.all.2: unknown expert 'l9'"),
        (
            ("  all: [ab, bc, l1]", "  all: []"),
            12,
            "libraries.all: a library without experts is evaluated only",
        ),
        (
            ("  all: [ab, bc, l1]", "  all: {experts: [], methods: [{name: uniform}]}"),
            12,
            "libraries.all.experts: a library without experts is evaluated only with method base",
        ),
        (
            ("bases: [default, test]", "bases: [default, /no/such/base]"),
            2,
            "bases.1: '/no/such/base' is neither",
        ),
        (
            ("  datasets.rr.variant: [FF, HH, RR]", "  datasets.rr.variant: [FF, XX, RR]"),
            23,
            "grid.datasets.rr.variant: 'XX': datasets.rr.variant: choose one of FF, HH, RR",
        ),
        (
            (
                "  l1: {train: [{dataset: s2, file: lora1.train.jsonl}]}",
                "  l1: {train: [{dataset: s2, file: lora3.train.jsonl}]}",
            ),
            9,
            "experts.l1.train.0.file: dataset 's2' has no lora3.train.jsonl",
        ),
        (
            (
                "  ab: {train: [{dataset: rr, task: ab}], lora: {r: 4}}",
                "  ab: {train: [{dataset: rr, task: ab}], lora: {r: -1}}",
            ),
            7,
            "experts.ab.lora.r:",
        ),
        (
            ("bases: [default, test]", "bases: [default, /]"),
            2,
            "bases.1: '/': no config.json; not a Hugging Face model folder",
        ),
        (
            ("  datasets.rr.variant: [FF, HH, RR]", "  datasets.rr.variant: [FF, HH, FF]"),
            23,
            "grid.datasets.rr.variant: 'FF' is given twice (it would run the same cells twice)",
        ),
        (
            ("  methods.1.options.density: [0.2, 0.5]", "  methods.1.options.density: [0.2, 0.2]"),
            24,
            "grid.methods.1.options.density: 0.2 is given twice",
        ),
        (
            ("  methods.1.options.density: [0.2, 0.5]", "  name: [a, b]"),
            24,
            "grid.name: a run has one name",
        ),
        (
            (
                "  methods.1.options.density: [0.2, 0.5]",
                "  methods.1.options.density: [" + ", ".join(f"0.{i:03d}" for i in range(1, 400)) + "]",
            ),
            22,
            "grid: 1,197 points (3 x 399): at most 1,000; split the spec",
        ),
        (("description", "description"), 0, ""),  # placeholder removed below
    ][:-1],
)
def test_bad_input_names_file_and_line(
    tmp_path: Path, edit: tuple[str, str], line: int, fragment: str
) -> None:
    old, new = edit
    assert old in GOOD
    message = error(tmp_path, GOOD.replace(old, new))
    assert message.startswith(f"{tmp_path / 'spec.yaml'}:{line}: "), message
    assert fragment in message
    assert "\n" not in message


def test_block_style_lines_and_duplicates(tmp_path: Path) -> None:
    text = GOOD.replace("name: small\n", "name: small\nnotes: hi\n")
    assert error(tmp_path, text).endswith("spec.yaml:2: notes: unknown key")
    text = GOOD.replace("seeds: [0, 1]\n", "seeds:\n  - 0\n  - 1.5\n")
    assert ":23: seeds.1:" in error(tmp_path, text)
    text = GOOD.replace("seeds: [0, 1]\n", "seeds: [0, 1]\nseeds: [2]\n")
    assert ":22: seeds: duplicate key (first on line 21)" in error(tmp_path, text)
    assert ":1: missing required key" not in error(tmp_path, text)
    assert "bases: missing required key" in error(tmp_path, GOOD.replace("bases: [default, test]\n", ""))
    assert ":3: not valid YAML" in error(tmp_path, "name: x\nbases: [a\nseeds: ]\n")


def test_a_library_without_experts_is_the_base_row(tmp_path: Path) -> None:
    text = GOOD.split("grid:")[0].replace(
        "  all: [ab, bc, l1]", "  none: {experts: [], methods: [{name: base}]}"
    )
    cells = expand(load_spec(write(tmp_path, text)))
    base = [c for c in cells if c.library == "none"]
    # 2 bases x 2 evaluations x 2 seeds, one method each; the hops library keeps its 3 methods
    assert (
        len(base) == 8
        and len(cells) == 8 + 24
        and {(c.method.name, len(c.members)) for c in base} == {("base", 0)}
    )


def test_scale_resizes(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD + "  datasets.rr.triplets: [10, 50]\n"))
    assert len(expand(spec)) == 288 * 2
    small = apply_scale(spec, "test")
    rr, s2 = small.datasets["rr"], small.datasets["s2"]
    assert (rr.triplets, rr.templates) == (4, 8)  # type: ignore[union-attr]
    assert (s2.triplets, s2.bridge_triplets) == (4, 4)  # type: ignore[union-attr]
    assert {e.lora.epochs for e in small.experts.values()} == {1}
    assert small.experts["ab"].lora.r == 4  # what is compared is kept
    assert small.bases == ["test"]  # default and test both become the test base
    assert small.grid["datasets.rr.triplets"] == [4]
    cells = expand(small)
    assert len(cells) == 6 * 24  # 1 base now, the triplets grid collapsed
    assert {c.spec.datasets["rr"].triplets for c in cells} == {4}  # type: ignore[union-attr]
    paper = apply_scale(spec, "paper")
    assert paper.datasets["rr"].triplets == 100 and paper.bases == ["default", "test"]  # type: ignore[union-attr]
    assert {e.lora.epochs for e in paper.experts.values()} == {5}
    default = apply_scale(spec, "default")
    assert default.datasets["rr"].triplets == 20 and default.experts["ab"].lora.epochs is None  # type: ignore[union-attr]
    real = apply_scale(spec, "cpu-real")  # built-in bases become SmolLM2, trained at lr 1e-3 for 3 epochs
    assert real.bases == ["smollm2"] and real.datasets["rr"].triplets == 16  # type: ignore[union-attr]
    assert {(e.lora.lr, e.lora.epochs) for e in real.experts.values()} == {(1e-3, 3)}
    assert default.experts["ab"].lora.lr is None  # the base decides (3e-3 on a built-in base)
    assert apply_scale(spec, None) is spec
    with pytest.raises(LoralabError, match="--scale huge"):
        apply_scale(spec, "huge")


@pytest.mark.parametrize("scale", list(SCALES))
@pytest.mark.parametrize("path", sorted(PAPER.glob("*.yaml")), ids=lambda p: p.name)
def test_paper_specs_validate(path: Path, scale: str) -> None:
    spec = load_spec(path, scale)
    assert expand(spec)


def test_paper_spec_counts() -> None:
    assert {p.name for p in PAPER.glob("*.yaml")} >= {"bridge-ablation.yaml", "table6-familiarity.yaml"}
    bridge = expand(load_spec(PAPER / "bridge-ablation.yaml", "default"))
    assert len(bridge) == 9 * 2  # setups 0-8 x uniform/arrow
    assert {c.spec.datasets["setup"].setup for c in bridge} == {f"setup-{i}" for i in range(9)}  # type: ignore[union-attr]
    assert {c.evaluation.prompting for c in bridge} == {"cot"}
    assert {e.lora.targets for c in bridge for e in c.spec.experts.values()} == {"mlp"}
    table6 = expand(load_spec(PAPER / "table6-familiarity.yaml", "default"))
    # FF/HH/RR x (2-/3-combination x uniform/arrow + the oracle and the mixed expert alone, once each)
    assert len(table6) == 3 * (2 * 2 + 2)
    single = {(c.library, c.method.name) for c in table6 if c.library.endswith("expert")}
    assert single == {("oracle expert", "oracle"), ("mixed two-hop expert", "oracle")}


def test_cli_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, GOOD)
    assert run_cli(["validate", str(good), "--scale", "test"], monkeypatch) == 0
    assert "144 cells" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("  - name: arrow", "  - name: arow"))
    assert run_cli(["validate", str(bad)], monkeypatch) == 2
    assert "bad.yaml:17: methods.2.name: unknown method" in " ".join(capsys.readouterr().err.split())
    assert run_cli(["validate", str(tmp_path / "missing.yaml")], monkeypatch) == 2


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """Ten levels of nine aliases each: 421 bytes that expand to 9^10 nodes; walked, it ran for ever."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    spec, problems = check_spec(bomb)
    assert spec is None and problems == [f"{bomb}: its aliases expand it to more than 100000 YAML nodes"]
