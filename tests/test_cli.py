"""The real CLI end to end (data -> train -> eval -> report) and its one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer.main

from loralab.cli.main import app
from loralab.experts.config import ExpertConfig
from tests.conftest import run_cli


def test_cli_end_to_end(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    assert (
        run_cli(
            [
                "data",
                "twohop",
                "--variant",
                "FF",
                "--triplets",
                "4",
                "--templates",
                "12",
                "--workdir",
                str(work),
            ],
            monkeypatch,
        )
        == 0
    )
    data = work / "data" / "twohop-FF-n4-s0"
    assert sorted(p.name for p in data.glob("*.jsonl"))[:4] == [
        "ab.dev.jsonl",
        "ab.test.jsonl",
        "ab.train.jsonl",
        "ac.dev.jsonl",
    ]
    lib = work / "lib"
    for name, task in (("A-B", "ab"), ("B-C", "bc")):
        code = run_cli(
            [
                "train",
                "--base",
                "test",
                "--data",
                str(data / f"{task}.train.jsonl"),
                "--out",
                str(lib / name),
                "--epochs",
                "1",
                "--r",
                "2",
            ],
            monkeypatch,
        )
        assert code == 0
    assert (lib / "index.json").is_file()
    assert run_cli(["library", "ls", str(lib)], monkeypatch) == 0
    assert "A-B" in capsys.readouterr().out
    for method in ("uniform", "arrow"):
        code = run_cli(
            [
                "eval",
                "--base",
                "test",
                "--data",
                str(data / "ac_cot.test.jsonl"),
                "--expert",
                str(lib / "A-B"),
                "--expert",
                str(lib / "B-C"),
                "--method",
                method,
                "--max-new-tokens",
                "8",
                "--workdir",
                str(work),
            ],
            monkeypatch,
        )
        assert code == 0
    con = sqlite3.connect(work / "results.sqlite")
    cells = con.execute("SELECT method, n, prompting, dataset FROM cells ORDER BY id").fetchall()
    assert cells == [
        ("uniform", 8, "cot", "twohop-FF-n4-s0/ac_cot.test"),
        ("arrow", 8, "cot", "twohop-FF-n4-s0/ac_cot.test"),
    ]
    # per cell: 8 two-hop rows plus the 8 A->B and 8 B->C held-out one-hop rows of the same triplets
    by_task = con.execute("SELECT task, count(*) FROM examples GROUP BY task ORDER BY task").fetchall()
    assert by_task == [("ab", 16), ("ac_cot", 16), ("bc", 16)]
    capsys.readouterr()
    assert run_cli(["report", str(work / "results.sqlite"), "--format", "csv"], monkeypatch) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split(",")[:8] == [
        "run",
        "base",
        "dataset",
        "dataset_version",
        "prompting",
        "method",
        "library",
        "n",
    ]
    assert len(lines) == 3 and lines[1].split(",")[5] == "uniform"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--base", "test", "--data", "{bad}", "--max-new-tokens", "2"], "bad.jsonl:2: not JSONL"),
        (["eval", "--base", "test", "--data", "{nofield}"], "nofield.jsonl:1: missing string field(s) gold"),
        (["eval", "--base", "test", "--data", "{blank}"], "blank.jsonl:2: empty field(s) prompt"),
        (
            ["eval", "--base", "test", "--data", "{format}"],
            "format.jsonl: example 2 (id q2): format 'bogus': choose cot or direct",
        ),
        (["eval", "--base", "test", "--data", "{good}", "--opt", "top_k"], "--opt top_k: expected key=value"),
        (["eval", "--base", "{tmp}", "--data", "{good}"], "no config.json"),
        (
            [
                "eval",
                "--base",
                "test",
                "--data",
                "{good}",
                "--expert",
                "{tmp}/missing",
                "--method",
                "uniform",
            ],
            "missing: expert folder not found",
        ),
        (
            ["eval", "--base", "test", "--data", "{good}", "--expert", "{tmp}", "--method", "nope"],
            "--method nope: unknown",
        ),
        (["data", "twohop", "--variant", "XX"], "--variant XX: choose one of FF, HH, RR"),
        (["data", "twohop", "--relations", "nope"], "--relations nope: choose one of spouse_born_in"),
        (
            ["data", "twohop", "--templates", "4", "--test-templates", "2"],
            "--test-templates 2: must be at least",
        ),
        (
            ["train", "--data", "{good}", "--out", "{tmp}/e", "--targets", "everything", "--base", "test"],
            "'everything' is not one of 'mlp', 'attention', 'both'",
        ),
        (
            ["train", "--data", "{good}", "--out", "{tmp}/e", "--r", "0", "--base", "test"],
            "--r 0: Input should be greater than or equal to 1",
        ),
        (["report", "{tmp}/none.sqlite"], "none.sqlite: results database not found"),
        (["report", "{bad}"], "not a loralab results database"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    args: list[str],
    message: str,
    tiny_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "gold": "b"}\n{oops\n')
    (tmp_path / "nofield.jsonl").write_text('{"prompt": "a"}\n')
    (tmp_path / "good.jsonl").write_text('{"prompt": "a", "gold": "b", "answer": "b."}\n')
    (tmp_path / "blank.jsonl").write_text('{"prompt": "a", "gold": "b"}\n{"prompt": " ", "gold": "b"}\n')
    two = '{"prompt": "a", "gold": "b"}\n{"prompt": "a", "gold": "b", "format": "bogus", "id": "q2"}\n'
    (tmp_path / "format.jsonl").write_text(two)
    files = {
        "blank": tmp_path / "blank.jsonl",
        "format": tmp_path / "format.jsonl",
        "bad": tmp_path / "bad.jsonl",
        "nofield": tmp_path / "nofield.jsonl",
        "good": tmp_path / "good.jsonl",
        "tmp": tmp_path,
    }
    argv = [a.format(**files) for a in args]
    capsys.readouterr()
    assert run_cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert message in err.replace("\n", "")
    assert err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "e").exists()


def test_base_folder_that_is_not_a_causal_lm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    (tmp_path / "d.jsonl").write_text('{"prompt": "a", "gold": "b"}\n')
    assert run_cli(["eval", "--base", str(tmp_path), "--data", str(tmp_path / "d.jsonl")], monkeypatch) == 2
    assert "is not a causal language model" in capsys.readouterr().err


def test_train_without_out_writes_into_the_workdir_library(
    tiny_base: Path, twohop_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["train", "--base", "test", "--data", str(twohop_dir / "bc.train.jsonl"), "--name", "B-C"]
    code = run_cli([*args, "--epochs", "1", "--r", "2", "--workdir", str(tmp_path)], monkeypatch)
    assert code == 0
    assert (tmp_path / "library" / "B-C" / "adapter_model.safetensors").is_file()
    assert '"name": "B-C"' in (tmp_path / "library" / "index.json").read_text()


def test_train_flags_are_the_expert_config_fields() -> None:
    """Every ExpertConfig field is a `loralab train` flag with the field's default and description, so the
    CLI and a spec's `lora:` keys cannot disagree on a default (options.lora_options generates the flags)."""
    command = typer.main.get_command(app).commands["train"]
    flags = {p.name: p for p in command.params}
    assert len(ExpertConfig.model_fields) == 9  # r alpha dropout targets lr epochs batch_size max_len seed
    for name, field in ExpertConfig.model_fields.items():
        flag = flags[name]
        assert flag.opts == ["--" + name.replace("_", "-")]
        assert (flag.default, flag.help) == (field.default, field.description), name
    assert (flags["r"].default, flags["alpha"].default, flags["max_len"].default) == (16, 32, 512)


def test_train_flags_reach_the_expert_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values given as flags are the config `train_expert` gets; the others are ExpertConfig's defaults."""
    import loralab.experts.train

    got: list[ExpertConfig] = []

    def fake_train(
        base: str, data: list[Path], out: Path, cfg: ExpertConfig, *_: object, **__: object
    ) -> Path:
        got.append(cfg)
        out.mkdir(parents=True)
        return out

    monkeypatch.setattr(loralab.experts.train, "train_expert", fake_train)
    (tmp_path / "d.jsonl").write_text('{"prompt": "a", "gold": "b", "answer": "b."}\n')
    args = ["train", "--data", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "lib" / "e")]
    flags = ["--r", "4", "--targets", "attention", "--lr", "0.01", "--batch-size", "3", "--max-len", "64"]
    assert run_cli([*args, *flags], monkeypatch) == 0
    assert got == [ExpertConfig(r=4, alpha=32, targets="attention", lr=0.01, batch_size=3, max_len=64)]
    assert (got[0].dropout, got[0].epochs, got[0].seed) == (0.05, None, 0)
    # --out into a folder that is not a library (here the data's): the expert, and no index.json beside it
    assert (
        run_cli(["train", "--data", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "e2")], monkeypatch)
        == 0
    )
    assert (tmp_path / "e2").is_dir() and not (tmp_path / "index.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["validate", "{spec}", "--preset", "huge"],
            "--scale huge: choose one of test, default, paper, cpu-real",
        ),
        (["run", "{spec}", "--preset", "huge"], "--scale huge: choose one of"),
        (["quickstart", "--preset", "huge"], "--scale huge: choose one of"),
        (["data", "validate", "{tmp}", "--preset", "tests"], "--base tests: checks a base preset's corpus"),
        (
            ["base", "build", "--preset", "defualt"],
            "base preset defualt: unknown; choose one of default, test",
        ),
        (
            ["validate", "{spec}", "--scale", "test", "--preset", "paper"],
            "--preset paper: the old name of --scale, given as test; give one of them",
        ),
        (
            ["base", "build", "test", "--preset", "default"],
            "--preset default: the old name of NAME, given as test",
        ),
    ],
)
def test_preset_is_the_deprecated_name_of_scale_and_base_preset(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--preset` (in issue texts, READMEs and users' scripts) still reaches the option it was renamed to:
    --scale on run, validate and quickstart, NAME on base build, --base on data validate; with a different
    value for the new name it is one line, exit 2."""
    spec = str(Path(__file__).parent / "specs" / "tiny-grid.yaml")
    args = [a.format(spec=spec, tmp=tmp_path) for a in args]
    workdir = ["--workdir", str(tmp_path / "w")] if args[0] in ("run", "quickstart") else []
    assert run_cli([*args, *workdir], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "w").exists()


def test_preset_alias_builds_the_named_base_and_is_one_help_line(
    tiny_base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`base build --preset test` is `base build test`; each renamed option's help has one deprecation line."""
    for args in (["base", "build", "test"], ["base", "build", "--preset", "test"]):
        assert run_cli(args, monkeypatch) == 0
        assert capsys.readouterr().out.split() == ["already", "built:", str(tiny_base)]
    monkeypatch.setenv("COLUMNS", "200")
    for command, new in (
        (["run"], "--scale"),
        (["validate"], "--scale"),
        (["quickstart"], "--scale"),
        (["base", "build"], "NAME"),
        (["data", "validate"], "--base"),
    ):
        assert run_cli([*command, "--help"], monkeypatch) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if "--preset" in line]
        assert len(lines) == 1 and f"deprecated: the old name of {new}" in lines[0], command


@pytest.mark.parametrize(
    ("seeds", "why"),
    [
        ("a", "expected distinct non-negative integers"),
        ("1,-2", "expected distinct non-negative integers"),
        ("0,,1", "expected distinct non-negative integers"),
        ("0,0", "a seed is repeated"),
        ("0,00", "a seed is repeated"),  # the same number written twice
        ("4294967296", "seeds must be below 2**32"),
        ("99999999999999999999", "seeds must be below 2**32"),  # once a traceback from SQLite
    ],
)
def test_bad_seeds_are_one_line(
    seeds: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Path(__file__).parent / "specs" / "tiny-grid.yaml"
    _refused_run(spec, ["--seeds", seeds], f"--seeds {seeds}: {why}", tmp_path, monkeypatch, capsys)
    if seeds == "a":  # an empty value is refused before any command reads it
        _refused_run(spec, ["--seeds", ""], "--seeds: an empty value", tmp_path, monkeypatch, capsys)


def _refused_run(
    spec: Path,
    flags: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`loralab run SPEC --scale test FLAGS` exits 2 with one line holding `message` and writes no workdir."""
    args = ["run", str(spec), "--scale", "test", *flags, "--workdir", str(tmp_path / "w")]
    assert run_cli(args, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "w").exists()


def test_seeds_replace_the_specs_seeds(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--seeds 1` runs report-seeds.yaml (seeds [0, 1]) for seed 1 alone, and the run folder records it."""
    from loralab.experiments.plan import load_plan

    spec = str(Path(__file__).parent / "specs" / "report-seeds.yaml")
    args = ["run", spec, "--scale", "test", "--seeds", "1", "--workdir", str(tmp_path / "w"), "--no-probe"]
    assert run_cli([*args, "--diagnostics", "none"], monkeypatch) == 0
    folder = tmp_path / "w" / "runs" / "report-seeds.test"
    assert json.loads((folder / "spec.json").read_text())["seeds"] == [1]
    plan = load_plan(folder)
    assert plan.cells and {c.record["seed"] for c in plan.cells} == {1}
    # what a resume must repeat, and what a narrower rerun may not drop
    assert json.loads((folder / "meta.json").read_text())["overrides"] == ["--seeds 1"]


def _grid_spec(tmp_path: Path) -> Path:
    """tests/specs/tiny-grid.yaml with a grid over the dataset's variant (RR, HH)."""
    spec = tmp_path / "grid.yaml"
    text = (Path(__file__).parent / "specs" / "tiny-grid.yaml").read_text()
    spec.write_text(text + "grid:\n  datasets.rr.variant: [RR, HH]\n")
    return spec


@pytest.mark.parametrize(
    ("only", "why"),
    [
        ("datasets.rr.variant", "expected AXIS=VALUE[,VALUE...]"),
        ("datasets.rr.variant=", "expected AXIS=VALUE[,VALUE...]"),
        ("datasets.rr.varient=RR", "'datasets.rr.varient' is not a grid axis (axes: datasets.rr.variant)"),
        ("datasets.rr.variant=XX", "'XX' is not a value of datasets.rr.variant (values: RR, HH)"),
    ],
)
def test_bad_only_is_one_line(
    only: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused_run(
        _grid_spec(tmp_path), ["--only", only], f"--only {only}: {why}", tmp_path, monkeypatch, capsys
    )


def test_an_only_axis_given_twice_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--only", "datasets.rr.variant=RR", "--only", "datasets.rr.variant=HH"]
    why = "--only datasets.rr.variant=HH: datasets.rr.variant is given twice; list its values once"
    _refused_run(_grid_spec(tmp_path), flags, why, tmp_path, monkeypatch, capsys)


def test_only_keeps_those_grid_values(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--only datasets.rr.variant=HH` runs the HH grid point alone; its cells keep the whole grid's keys."""
    from loralab.experiments.plan import load_plan, plan
    from loralab.experiments.spec import load_spec

    spec = _grid_spec(tmp_path)
    args = ["run", str(spec), "--scale", "test", "--only", "datasets.rr.variant=HH"]
    args += ["--workdir", str(tmp_path / "w"), "--no-probe", "--diagnostics", "none"]
    assert run_cli(args, monkeypatch) == 0
    ran = load_plan(tmp_path / "w" / "runs" / "tiny-grid.test")
    assert ran.cells and {c.record["point"]["datasets.rr.variant"] for c in ran.cells} == {"HH"}
    whole = plan(load_spec(spec, "test"), tmp_path / "w", "test")
    hh = [c.key for c in whole.cells if c.record["point"]["datasets.rr.variant"] == "HH"]
    assert [c.key for c in ran.cells] == hh and len(whole.cells) == 2 * len(hh)
