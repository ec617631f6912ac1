"""A corpus of bad inputs (issue 20): each one gets a non-zero exit, exactly one error line naming the file or
flag, no traceback, and leaves no output behind. Every class of the issue is covered: adapter configs and
weights, NaN/Inf, option ranges and list syntax, output paths, damaged base folders, specs that are not UTF-8
or not YAML, datasets, implicit bases and near-miss names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import make_lora_folder, run_cli

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
SPECS = Path(__file__).parent / "specs"


def _edit_config(folder: Path, **changes: object) -> None:
    cfg = json.loads((folder / CONFIG).read_text())
    (folder / CONFIG).write_text(json.dumps({**cfg, **changes}))


def _edit_weights(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(folder / WEIGHTS))
    change(tensors)
    save_file(tensors, str(folder / WEIGHTS))


def _first(tensors: dict[str, torch.Tensor], part: str) -> str:
    return sorted(k for k in tensors if k.endswith(f"{part}.weight"))[0]


def _poison(value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def change(t: dict[str, torch.Tensor]) -> None:
        key = _first(t, "lora_B")
        t[key] = t[key].clone()
        t[key][0, 0] = value

    return change


def _shrink_b(t: dict[str, torch.Tensor]) -> None:  # B of rank r - 1 against A of rank r
    key = _first(t, "lora_B")
    t[key] = t[key][:, :-1].contiguous()


def _extra_tensor(t: dict[str, torch.Tensor]) -> None:  # DoRA's magnitude vector without the config flag
    key = _first(t, "lora_A").replace("lora_A.weight", "lora_magnitude_vector")
    t[key] = torch.ones(4)


# (id, how to break a copy of a good expert, what the error line must contain)
ADAPTERS: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "config-not-object",
        lambda f: (f / CONFIG).write_text("[1, 2]"),
        "adapter_config.json: not a JSON object",
    ),
    ("config-not-json", lambda f: (f / CONFIG).write_text("{r: 4"), "adapter_config.json: not valid JSON"),
    (
        "config-not-utf8",
        lambda f: (f / CONFIG).write_bytes(b'{"r": "\xff\xfe"}'),
        "adapter_config.json: not valid",
    ),
    ("r-not-number", lambda f: _edit_config(f, r="four"), "adapter_config.json: field r: must be a positive"),
    ("r-zero", lambda f: _edit_config(f, r=0), "adapter_config.json: field r: must be a positive integer"),
    ("r-bool", lambda f: _edit_config(f, r=True), "field r: must be a positive integer"),
    ("r-differs", lambda f: _edit_config(f, r=8), "tensors have rank 4, "),
    ("alpha-text", lambda f: _edit_config(f, lora_alpha="x"), "field lora_alpha: must be a positive number"),
    ("dora", lambda f: _edit_config(f, use_dora=True), "field use_dora: DoRA"),
    ("lora-bias", lambda f: _edit_config(f, lora_bias=True), "field lora_bias"),
    ("rank-pattern", lambda f: _edit_config(f, rank_pattern={"q_proj": 2}), "field rank_pattern"),
    ("bias-all", lambda f: _edit_config(f, bias="all"), "field bias"),
    ("modules-to-save", lambda f: _edit_config(f, modules_to_save=["lm_head"]), "field modules_to_save"),
    # PEFT would apply only part of the weights: the adapter it loads is not the one loralab reads
    ("exclude-modules", lambda f: _edit_config(f, exclude_modules=["down_proj"]), "field exclude_modules"),
    ("layer-subset", lambda f: _edit_config(f, layers_to_transform=[0]), "field layers_to_transform"),
    ("pissa-init", lambda f: _edit_config(f, init_lora_weights="pissa"), "field init_lora_weights"),
    ("ab-rank-mismatch", lambda f: _edit_weights(f, _shrink_b), "lora_A has rank 4, lora_B has rank 3"),
    ("nan", lambda f: _edit_weights(f, _poison(float("nan"))), "holds NaN or Inf"),
    ("inf", lambda f: _edit_weights(f, _poison(float("inf"))), "holds NaN or Inf"),
    ("unknown-tensor", lambda f: _edit_weights(f, _extra_tensor), "neither lora_A nor lora_B"),
    (
        "truncated",
        lambda f: (f / WEIGHTS).write_bytes((f / WEIGHTS).read_bytes()[:100]),
        "safetensors: cannot read",
    ),
    ("no-weights", lambda f: (f / WEIGHTS).unlink(), "adapter_model.safetensors: file not found"),
]


BREAK = {name: change for name, change, _ in ADAPTERS}


@dataclass
class World:
    """What a case needs: a scratch folder, a good expert (which records its base), data and the base."""

    tmp: Path
    expert: Path
    data: Path
    base: Path

    def broken(self, name: str, change: Callable[[Path], None]) -> Path:
        folder = self.tmp / "in" / name
        shutil.copytree(self.expert, folder)
        (folder / "arrow_prototypes.safetensors").unlink(missing_ok=True)
        change(folder)
        return folder


@pytest.fixture
def world(trained_expert: Path, twohop_dir: Path, tiny_base: Path, tmp_path: Path) -> World:
    return World(tmp_path, trained_expert, twohop_dir / "ac_cot.test.jsonl", tiny_base)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _expect_one_error(
    args: list[str],
    needle: str,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run the CLI in-process: exit 2, one error line containing `needle`, nothing new under world.tmp."""
    before = _tree(world.tmp)
    capsys.readouterr()
    code = run_cli(args, monkeypatch)  # an uncaught exception (a traceback) fails the test right here
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (args, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err
    assert _tree(world.tmp) == before, "a failed command left output behind"


@pytest.mark.parametrize("name, change, needle", ADAPTERS, ids=[a[0] for a in ADAPTERS])
def test_bad_adapter_is_refused_by_combine(
    name: str,
    change: Callable[[Path], None],
    needle: str,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = world.broken(name, change)
    for method in ("uniform", "arrow"):  # a merge and a router recipe alike
        out = world.tmp / f"out-{method}"
        args = ["combine", "--method", method, "--expert", str(world.expert), "--expert", str(bad)]
        _expect_one_error([*args, "--out", str(out)], needle, world, monkeypatch, capsys)


@pytest.mark.parametrize("name", ["nan", "r-differs", "dora"])
def test_bad_adapter_is_refused_by_eval_before_the_base_loads(
    name: str, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    change, needle = BREAK[name], next(n for i, _, n in ADAPTERS if i == name)
    bad = world.broken(name, change)
    args = ["eval", "--data", str(world.data), "--expert", str(bad), "--workdir", str(world.tmp / "work")]
    _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_the_finite_check_can_be_skipped(world: World) -> None:
    from loralab.errors import LoralabError
    from loralab.experts.library import load_expert

    bad = world.broken("nan", BREAK["nan"])
    with pytest.raises(LoralabError, match="NaN or Inf"):
        load_expert(bad)
    module = sorted(load_expert(world.expert).B)[0]
    assert torch.isnan(load_expert(bad, check_finite=False).B[module]).any()


# (id, combine/eval options, what the line names)
OPTIONS = [
    ("top_k-zero", "arrow", ["top_k=0"], "--opt top_k=0: must be at least 1"),
    ("top_k-negative", "arrow", ["top_k=-2"], "--opt top_k=-2: must be at least 1"),
    ("top_k-fraction", "arrow", ["top_k=1.5"], "--opt top_k=1.5: expected int"),
    ("temperature-zero", "arrow", ["temperature=0"], "--opt temperature=0: must be in [0.0001, 10000]"),
    ("temperature-nan", "arrow", ["temperature=nan"], "--opt temperature=nan: must be a finite number"),
    ("iters-zero", "arrow", ["iters=0"], "--opt iters=0: must be in [1, 10000]"),
    ("seed-negative", "dare_ties", ["seed=-1"], "--opt seed=-1: must be in [0, 4294967295]"),
    ("density-above-1", "ties", ["density=1.5"], "--opt density=1.5: must be in (0, 1]"),
    ("density-zero", "dare_linear", ["density=0"], "--opt density=0: must be in (0, 1]"),
    ("rank-zero", "uniform", ["rank=0"], "--opt rank=0: must be at least 1"),
    ("weights-not-numbers", "linear", ["weights=[0.3,abc]"], "--opt weights=[0.3,abc]: expected float"),
    ("weights-inf", "linear", ["weights=1,inf"], "--opt weights=1,inf: must be a finite number"),
    (
        "elect-typo",
        "ties",
        ["elect=totl"],
        "--opt elect=totl: choose one of total, frequency; did you mean total?",
    ),
    ("mix-unknown", "arrow", ["mix=both"], "--opt mix=both: choose one of output, params"),
    ("unknown-option", "arrow", ["top_q=1"], "--opt top_q: method arrow takes"),
    ("not-key-value", "arrow", ["top_k"], "--opt top_k: expected key=value"),
    ("lam-text", "task_arithmetic", ["lam=big"], "--opt lam=big: expected float"),
]


@pytest.mark.parametrize("name, method, opts, needle", OPTIONS, ids=[o[0] for o in OPTIONS])
@pytest.mark.parametrize("command", ["combine", "eval"])
def test_option_out_of_range_is_refused_at_parse_time(
    name: str,
    method: str,
    opts: list[str],
    needle: str,
    command: str,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = [x for o in opts for x in ("--opt", o)]
    other = world.tmp / "in" / "B-C"  # a second expert (the same one twice is an error of its own)
    shutil.copytree(world.expert, other)
    expert = ["--expert", str(world.expert), "--expert", str(other)]
    if command == "combine":
        args = ["combine", "--method", method, *expert, *flags, "--out", str(world.tmp / "out")]
    else:
        args = ["eval", "--data", str(world.data), "--method", method, *expert, *flags]
        args += ["--workdir", str(world.tmp / "work")]
    if name == "elect-typo":
        needle = needle.split(";")[0]  # the suggestion is checked below too
    _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_option_ranges_hold_for_the_python_api_and_specs(world: World, tmp_path: Path) -> None:
    from loralab.combination import METHODS, combine, merge
    from loralab.combination.registry import coerce_options
    from loralab.errors import LoralabError

    with pytest.raises(LoralabError, match=r"--opt top_k=0: must be at least 1"):
        combine((None, None), [world.expert], "arrow", top_k=0)
    with pytest.raises(LoralabError, match=r"--opt density=1.2: must be in \(0, 1\]"):
        merge([world.expert], "ties", density=1.2)
    # the list syntax users write, from the CLI, a spec or Python: all the same list
    linear = METHODS["linear"]
    for value in ("0.3,0.7", "[0.3,0.7]", "[0.3, 0.7]", [0.3, 0.7], (0.3, 0.7)):
        assert coerce_options(linear, {"weights": value}) == {"weights": [0.3, 0.7]}
    assert coerce_options(linear, {"weights": 1}) == {"weights": [1.0]}
    assert coerce_options(METHODS["arrow"], {"top_k": "none"}) == {"top_k": None}
    # a single weight is every expert's: linear with weights=2 is twice the sum
    e = merge([world.expert, world.expert], "linear", weights=1)
    d = merge([world.expert, world.expert], "linear", weights="2")
    m = sorted(e.modules)[0]
    torch.testing.assert_close(d.delta(m), 2 * e.delta(m))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: s\nbases: [test]\ndatasets: {d: {kind: setup, setup: setup-0, triplets: 3}}\n"
        "experts: {e: {train: [{dataset: d, file: lora1.train.jsonl}]}}\nlibraries: {l: [e]}\n"
        "methods: [{name: ties, options: {density: 1.5}}, {name: arrow, options: {top_k: 0, temperature: 0}}]\n"
        "evaluations: [{dataset: d}]\n"
    )
    from loralab.experiments.spec import check_spec

    _, problems = check_spec(spec)
    assert problems == [
        f"{spec}:6: methods.0.options.density: must be in (0, 1]",
        f"{spec}:6: methods.1.options.top_k: must be at least 1",
        f"{spec}:6: methods.1.options.temperature: must be in [0.0001, 10000]",
    ]


def test_validate_lists_every_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: s\nbases: [tset]\ndatasets: {d: {kind: setup, setup: setup-22}}\n"
        "experts: {e: {train: [{dataset: dd, file: lora1.train.jsonl}]}}\nlibraries: {l: [e, f]}\n"
        "methods: [{name: tie}]\nevaluations: [{dataset: d}]\n"
    )
    capsys.readouterr()
    assert run_cli(["validate", str(spec)], monkeypatch) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith(f"error: {spec}:") for line in lines)
    text = "\n".join(lines)
    for part in (
        "datasets.d.setup: unknown setup 'setup-22'",
        "experts.e.train.0.dataset: unknown dataset 'dd'; did you mean d?",
        "libraries.l.1: unknown expert 'f'",
        "methods.0.name: unknown method 'tie'; did you mean ties?",
        "bases.0: 'tset' is neither a named base (default, test, smollm2) nor a folder; did you mean test?",
    ):
        assert part in text, (part, text)
    assert len(lines) == 5
    # run shows the first and says how many more there are
    capsys.readouterr()
    assert run_cli(["run", str(spec), "--workdir", str(tmp_path / "w")], monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(and 4 more: loralab validate lists them)" in err[0]
    assert not (tmp_path / "w").exists()


def _unwritable() -> Path | None:
    """A folder this process cannot write in (also as root: /sys is read-only), or None."""
    for folder in (Path("/sys"), Path("/proc/1")):
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(fd)
        os.unlink(probe)
    return None


def test_a_bad_device_is_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    eval_ = [
        "eval",
        "--data",
        str(world.data),
        "--expert",
        str(world.expert),
        "--workdir",
        str(world.tmp / "w"),
    ]
    cases = [
        ("tpu", "--device tpu: choose cpu, cuda, cuda:N or mps"),
        ("cuda:x", "--device cuda:x: choose cpu"),
    ]
    if not torch.cuda.is_available():
        cases.append(("cuda", "--device cuda: no CUDA device on this machine"))
    for device, needle in cases:
        _expect_one_error([*eval_, "--device", device], needle, world, monkeypatch, capsys)


def test_bad_output_paths_are_refused_up_front(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = world.tmp / "a-file"
    a_file.write_text("x")
    inside = world.tmp / "in" / "good"
    shutil.copytree(world.expert, inside)
    combine = ["combine", "--method", "uniform", "--expert", str(inside), "--out"]
    train = ["train", "--base", "test", "--data", str(world.data.parent / "ab.train.jsonl"), "--epochs", "1"]
    cases = [
        ([*combine, str(a_file)], f"--out {a_file}: is a file"),
        ([*combine, str(a_file / "sub")], f"--out {a_file / 'sub'}: {a_file} is a file, not a folder"),
        ([*combine, str(inside / "merged")], "inside the input"),
        ([*combine, str(world.tmp / "in")], "holds the input"),
        (
            [*train, "--name", "x", "--workdir", str(a_file)],
            f"--workdir {a_file / 'library' / 'x'}: {a_file} is a file",
        ),
        ([*train, "--out", str(a_file)], f"--out {a_file}: is a file"),
        (["eval", "--base", "test", "--data", str(world.data), "--workdir", str(a_file)], "--workdir"),
        (["data", "twohop", "--triplets", "2", "--out", str(a_file)], f"--out {a_file}: is a file"),
        (["run", "tests/specs/tiny-grid.yaml", "--workdir", str(a_file)], f"--workdir {a_file}: is a file"),
        (["theory", "--json", str(world.tmp / "in")], "--json"),
    ]
    locked = _unwritable()
    if locked is not None:
        cases.append(([*combine, str(locked / "merged")], f"cannot write in {locked}"))
    for args, needle in cases:
        _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_damaged_base_folders_are_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = world.tmp / "in" / "truncated-base"
    shutil.copytree(world.base, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    bad_config = world.tmp / "in" / "bad-config"
    shutil.copytree(world.base, bad_config)
    (bad_config / "config.json").write_text("{oops")
    eval_ = ["eval", "--data", str(world.data), "--workdir", str(world.tmp / "work"), "--base"]
    _expect_one_error(
        [*eval_, str(truncated)], f"--base {truncated}: cannot load", world, monkeypatch, capsys
    )
    _expect_one_error(
        [*eval_, str(bad_config)], f"--base {bad_config}: cannot read config.json", world, monkeypatch, capsys
    )
    _expect_one_error([*eval_, "tset"], "--base tset: neither a built-in", world, monkeypatch, capsys)
    no_tokenizer = world.tmp / "in" / "no-tokenizer"  # transformers then builds a tokenizer of a few tokens
    shutil.copytree(world.base, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    needle = f"--base {no_tokenizer}: its tokenizer has"
    _expect_one_error([*eval_, str(no_tokenizer)], needle, world, monkeypatch, capsys)


def test_bad_specs_and_datasets_are_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = world.tmp / "in"
    d.mkdir()
    (d / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (d / "tabs.yaml").write_text("name: [unclosed\n")
    (d / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    (d / "list.jsonl").write_text("[1, 2]\n")
    eval_ = ["eval", "--base", "test", "--workdir", str(world.tmp / "work"), "--data"]
    cases = [
        (["validate", str(d / "latin1.yaml")], "latin1.yaml: not a UTF-8 text file"),
        (
            ["run", str(d / "latin1.yaml"), "--workdir", str(world.tmp / "w")],
            "latin1.yaml: not a UTF-8 text file",
        ),
        (["validate", str(d / "tabs.yaml")], "tabs.yaml:2: not valid YAML"),
        (["validate", str(d)], f"{d}: Is a directory"),
        (["validate", "tests/specs/tiny-grid.yaml", "--scale", "tset"], "--scale tset: choose one of"),
        ([*eval_, str(d / "binary.jsonl")], "binary.jsonl: not a UTF-8 text file"),
        ([*eval_, str(d / "list.jsonl")], "list.jsonl:1: each line must be a JSON object"),
        ([*eval_, str(d / "missing.jsonl")], "missing.jsonl: dataset file not found"),
        ([*eval_, str(d)], f"{d}: a folder, not a JSONL file"),
        (["report", str(d / "binary.jsonl")], "binary.jsonl"),
    ]
    for args, needle in cases:
        _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_nothing_builds_or_guesses_a_base_implicitly(
    world: World, tiny_base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.models.load import load_base

    peft_made = make_lora_folder(world.tmp / "in" / "peft", load_base(tiny_base)[0], ["gate_proj"], 2, seed=0)
    work = str(world.tmp / "work")
    cases = [
        (["eval", "--data", str(world.data), "--workdir", work], "--base: needed"),
        (
            ["eval", "--data", str(world.data), "--expert", str(peft_made), "--workdir", work],
            "--base: needed",
        ),
        (
            ["combine", "--method", "arrow", "--expert", str(peft_made), "--out", str(world.tmp / "r")],
            "--base: needed to record the recipe's base",
        ),
        (
            [
                "combine",
                "--method",
                "lorahub",
                "--expert",
                str(peft_made),
                "--opt",
                f"data={world.data}",
                "--out",
                str(world.tmp / "r"),
            ],
            "--base: needed by the learned method lorahub",
        ),
    ]
    for args, needle in cases:
        _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_near_miss_names_get_a_suggestion(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    combine = ["combine", "--expert", str(world.expert), "--out", str(world.tmp / "o"), "--method"]
    cases = [
        ([*combine, "tie"], "--method tie: unknown; choose one of"),
        ([*combine, "arow"], "did you mean arrow?"),
        (["data", "setup", "setup-9", "--workdir", str(world.tmp / "w")], "did you mean setup-8?"),
        (
            ["data", "twohop", "--relations", "spouse_born", "--workdir", str(world.tmp / "w")],
            "did you mean spouse_born_in?",
        ),
        (
            ["ls", "method"],
            "ls method: choose methods, datasets, setups, bases, scales or all; did you mean methods?",
        ),
        (
            ["base", "build", "defualt"],
            "base preset defualt: unknown; choose one of default, test; did you mean default?",
        ),
        (["data", "validate", str(world.data.parent), "--base", "tests"], "did you mean test?"),
        (["train", "--r", "x", "--data", str(world.data)], "'--r'"),  # click's own errors are one line too
    ]
    for args, needle in cases:
        _expect_one_error(args, needle, world, monkeypatch, capsys)


def test_the_console_script_prints_one_line_and_no_traceback(world: World) -> None:
    """The real `loralab` entry point in a subprocess: stderr is one line, exit 2, nothing written."""
    bad = world.broken("nan", BREAK["nan"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    entry = [sys.executable, "-c", "from loralab.cli import main; main()"]
    out = world.tmp / "merged"
    args = ["combine", "--method", "uniform", "--expert", str(bad), "--out", str(out)]
    proc = subprocess.run([*entry, *args], capture_output=True, text=True, env=env, timeout=300, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "holds NaN or Inf" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_error_lines_keep_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Messages are printed as written, not as rich markup (the Ray hint names the extra `loralab[ray]`)."""
    from loralab.cli.options import error_line as _error_line

    _error_line("--executor ray: Ray is not installed (pip install 'loralab[ray]'); see [bold]x[/bold]")
    assert capsys.readouterr().err == (
        "error: --executor ray: Ray is not installed (pip install 'loralab[ray]'); see [bold]x[/bold]\n"
    )


def test_eval_uses_the_base_its_experts_record(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from loralab.experts.library import recorded_base

    assert recorded_base([world.expert]) == "test"  # its meta.json names the test preset's cache folder
    work = world.tmp / "work"
    args = ["eval", "--data", str(world.data), "--expert", str(world.expert), "--workdir", str(work)]
    assert run_cli([*args, "--max-new-tokens", "4"], monkeypatch) == 0
    con = sqlite3.connect(work / "results.sqlite")
    assert con.execute("SELECT base FROM cells").fetchall() == [("builtin:test",)]
    con.close()


def test_a_base_build_says_so_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.models import tiny

    monkeypatch.setenv("LORALAB_CACHE", str(tmp_path / "cache"))
    said: list[str] = []
    real_pretrain = tiny.pretrain

    def pretrain(*args: object, **kwargs: object) -> object:
        said.append(capsys.readouterr().err)  # what was printed before the long part began
        return real_pretrain(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tiny, "pretrain", pretrain)
    path = tiny.ensure_built("test")
    assert said and f"building the built-in base 'test' into {path} first (a few seconds" in said[0]
    assert tiny.BUILD_TIME["default"].startswith("about 15 min")
    capsys.readouterr()
    assert tiny.ensure_built("test") == path and capsys.readouterr().err == ""  # cached: silent


def test_overwrite_replaces_only_folders_loralab_wrote(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.artifacts import atomic_dir, check_loralab_folder
    from loralab.errors import LoralabError

    mine = world.tmp / "mine"  # a folder of the user's own
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    with (
        pytest.raises(LoralabError, match=r"not a folder loralab wrote \(it holds keep.txt\)"),
        atomic_dir(mine, overwrite=True),
    ):
        pass
    (world.tmp / "empty").mkdir()
    check_loralab_folder(world.tmp / "empty")  # an empty folder, or one loralab wrote, may be replaced
    check_loralab_folder(world.expert)
    monkeypatch.chdir(mine)
    with pytest.raises(LoralabError, match="holds the current folder"):
        check_loralab_folder(world.tmp)
    monkeypatch.chdir(world.tmp)
    data = world.data.parent / "ab.train.jsonl"
    train = ["train", "--base", "test", "--data", str(data), "--epochs", "1", "--overwrite"]
    cases = [
        (
            ["data", "twohop", "--triplets", "2", "--out", str(mine), "--overwrite"],
            "not a folder loralab wrote",
        ),
        ([*train, "--out", str(mine)], "not a folder loralab wrote"),
        ([*train, "--name", "../mine", "--workdir", str(world.tmp / "w")], "--name ../mine: a plain name"),
        (["data", "twohop", "--triplets", "2", "--seed", "-1", "--out", str(world.tmp / "d")], "--seed"),
        (
            ["data", "twohop", "--triplets", "2", "--seed", str(2**70), "--out", str(world.tmp / "d")],
            "--seed",
        ),
    ]
    for args, needle in cases:
        _expect_one_error(args, needle, world, monkeypatch, capsys)
    assert (mine / "keep.txt").read_text() == "keep"


def test_gsm_eval_counts_and_db_are_checked_first(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any model loads: counts must be positive (--limit -1 evaluated all but one question, 0 stored
    an empty cell) and --db must be a file."""
    monkeypatch.chdir(world.tmp)
    gsm = ["gsm", "eval", "--data", str(world.data), "--base", "test"]
    for flags, needle in (
        (["--max-new-tokens", "0"], "--max-new-tokens 0: must be positive"),
        (["--max-rounds", "-3"], "--max-rounds -3: must be positive"),
        (["--batch-size", "0"], "--batch-size 0: must be positive"),
        (["--limit", "0"], "--limit 0: must be positive"),
        (["--limit", "-1"], "--limit -1: must be positive"),
        (["--db", str(world.tmp)], f"--db {world.tmp}: is a folder"),
    ):
        _expect_one_error([*gsm, *flags], needle, world, monkeypatch, capsys)


def test_a_file_output_is_named_for_what_it_writes(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """theory --out notes.txt put PNG bytes into a text file and --json data.jsonl overwrote a dataset."""
    notes = world.tmp / "notes.txt"
    notes.write_text("mine")
    for args, needle in (
        (["theory", "--seeds", "1", "--out", str(notes)], f"--out {notes}: name a .png file"),
        (["theory", "--seeds", "1", "--json", str(world.data)], f"--json {world.data}: name a .json file"),
        (["probe", "familiarity", "--base", "test", "--json", str(notes)], "name a .json file"),
    ):
        _expect_one_error(args, needle, world, monkeypatch, capsys)
    assert notes.read_text() == "mine"


def test_a_rank_above_the_layer_width_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The test base's MLP layers are 32 x 64: r 40 cannot raise the update's rank (r 100000 wrote 220 MB)."""
    data = str(world.data.parent / "ab.train.jsonl")
    args = ["train", "--base", "test", "--data", data, "--r", "40", "--out", str(world.tmp / "e")]
    _expect_one_error(
        args,
        "--r 40: larger than model.layers.0.mlp.gate_proj's smaller side (32)",
        world,
        monkeypatch,
        capsys,
    )


def test_sizes_beyond_reason_are_refused_up_front(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`data twohop --triplets 100000` wrote for minutes towards 7 GB and `--epochs 1000000000` trained for
    ever; each size has a bound, the same from the CLI, a spec and Python."""
    from loralab.worlds.twohop import MAX_UNITS, make_triplets

    out = str(world.tmp / "o")
    big = str(MAX_UNITS + 1)
    data = str(world.data.parent / "ab.train.jsonl")
    for args, needle in (
        (
            ["data", "twohop", "--variant", "FF", "--triplets", big],
            f"--triplets {big}: must be at most 10,000",
        ),
        (["data", "bridge", "--triplets", big], f"--triplets {big}: must be at most 10,000"),
        (["data", "setup", "setup-0", "--bridge-triplets", big], f"--bridge-triplets {big}: must be at most"),
        (["data", "graph", "--u1", "100000000"], "--u1 100000000: must be at most 10,000"),
        (["data", "graph", "--u3", big], f"--u3 {big}: must be at most 10,000"),
        (["data", "graph", "--variant", "disjoint", "--paths", big], f"--paths {big}: must be at most"),
        (["train", "--base", "test", "--data", data, "--epochs", "1001"], "--epochs 1001:"),
        (["eval", "--base", "test", "--data", data, "--max-new-tokens", "32769"], "must be at most 32,768"),
        (["gsm", "eval", "--base", "test", "--data", data, "--max-new-tokens", "10**8"], "--max-new-tokens"),
    ):
        _expect_one_error(
            [*args, "--out", out] if args[0] == "data" else args, needle, world, monkeypatch, capsys
        )
    with pytest.raises(ValueError, match="between 1 and 10,000"):
        make_triplets("FF", MAX_UNITS + 1)
    assert len(make_triplets("FF", 3)) == 3
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: s\nbases: [test]\ndatasets: {{d: {{kind: twohop, variant: FF, triplets: {big}}}}}\n"
        "experts: {e: {train: [{dataset: d, file: ab.train.jsonl}], lora: {epochs: 5000}}}\n"
        "libraries: {l: [e]}\nmethods: [{name: uniform}]\nevaluations: [{dataset: d}]\n"
    )
    from loralab.experiments.spec import check_spec

    _, problems = check_spec(spec)
    assert len(problems) == 2, problems
    assert any(".triplets:" in p and "10000" in p for p in problems), problems
    assert any("lora.epochs" in p and "1000" in p for p in problems), problems


def test_wrong_kinds_of_files_are_named_before_work_starts(
    world: World, twohop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each of these failed late or blamed the wrong thing: a file named `runs` in the workdir failed the
    quick start after it had built the base and the datasets; a GSM gold without a number was reported as
    `example ?` after the model loaded; `--templates ''` was read as the current folder."""
    work = world.tmp / "w"
    work.mkdir()
    (work / "runs").write_text("not a folder")
    gold = world.tmp / "gold.jsonl"
    gold.write_text(json.dumps({"prompt": "What is 2 + 2?", "gold": "four"}) + "\n")
    monkeypatch.chdir(world.tmp)
    for args, needle in (
        (["quickstart", "--workdir", str(work), "--scale", "test"], f"{work / 'runs'} must be a folder"),
        (["run", str(SPECS / "tiny-grid.yaml"), "--workdir", str(work)], f"{work / 'runs'} must be a folder"),
        (["gsm", "eval", "--data", str(gold), "--base", "test"], f"{gold}: example #1: gold answer 'four'"),
        (["gsm", "data", "--templates", "", "--out", "g"], "--templates: an empty value (an unset shell"),
        # '' is '.' as a path: `--workdir "$UNSET"` would write into the current folder
        (["data", "twohop", "--variant", "RR", "--workdir", ""], "--workdir: an empty value"),
        (["data", "twohop", "--variant", "RR", "--workdir="], "--workdir: an empty value"),
        (["report", ""], "argument 2: empty"),
    ):
        _expect_one_error(args, needle, world, monkeypatch, capsys)
    # a damaged meta.json is a failed check of `data validate`, named
    data = world.tmp / "d"
    shutil.copytree(twohop_dir, data)
    (data / "meta.json").write_text("[1]")
    capsys.readouterr()
    assert run_cli(["data", "validate", str(data), "--base", "test"], monkeypatch) == 2
    assert f"{data / 'meta.json'}: not a JSON object" in capsys.readouterr().out


def test_an_outside_review_s_findings_are_one_line_each(
    world: World, twohop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an outside review (2026-12-07) found: each of these was a traceback, a silently wrong result
    (exit 0) or a run without end; now each is one line naming its flag or file, and writes nothing."""
    import sqlite3

    other = world.tmp / "in"
    other.mkdir()
    foreign = other / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE cells (id INTEGER, foo TEXT)")
    con.commit()
    con.close()
    long = other / "long.jsonl"
    long.write_text(json.dumps({"prompt": "word " * 3000, "gold": "x"}) + "\n")
    long_train = other / "long.train.jsonl"
    long_train.write_text(json.dumps({"prompt": "word " * 3000, "answer": "x"}) + "\n")
    flood = other / "flood.py"
    flood.write_text("print(1)\n")
    a = str(world.expert)
    link = world.expert.parent / "link"
    link.symlink_to(world.expert.name)
    data = str(world.data)
    train = str(twohop_dir / "ab.train.jsonl")
    out = str(world.tmp / "o")
    cat = ["combine", "--method", "cat_learned", "--expert", a, "--base", "test", "--out", out]
    arrow = ["eval", "--data", data, "--expert", a, "--method", "arrow", "--opt", "prototype_method=power"]
    try:
        for args, needle in (
            (
                ["theory", "--seeds", "1", "--entities", "3", "--relations", "2"],
                "no sampled world holds a chain",
            ),
            (["theory", "--entities", "1000000000"], "--entities 1000000000: with these relations"),
            (
                ["combine", "--method", "linear", "--expert", a, "--expert", str(link), "--out", out],
                f"--expert {link}: the same expert is given twice (as {a} and {link})",
            ),
            (
                ["combine", "--method", "uniform", "--expert", a, "--expert", a + "/", "--out", out],
                "given twice",
            ),
            (
                ["eval", "--data", data, "--base", "test", "--method", "arrow"],
                "--method arrow: combines experts, and no --expert is given",
            ),
            (
                ["eval", "--data", data, "--expert", a, "--method", "base"],
                "--method base: evaluates the base alone",
            ),
            ([*cat, "--opt", f"data={train}", "--opt", "lr=1e30"], "--opt lr=1e+30: must be in (0, 10]"),
            ([*arrow, "--opt", "iters=100000000"], "--opt iters=100000000: must be in [1, 10000]"),
            (
                ["report", str(foreign)],
                f"{foreign}: not a loralab results database (its cells table lacks run",
            ),
            (["report", "/dev/null"], "/dev/null: not a regular file"),
            (["report", str(foreign), "--paper-model", "LLaMA-7B"], "--paper-model: only with a run folder"),
            (
                ["sandbox", "run", str(flood), "--output-kb", "99999999999"],
                "--output-kb 99999999999: must be",
            ),
            (["eval", "--data", str(long), "--base", "test"], f"{long}: example #1: its prompt is"),
            (
                ["train", "--base", "test", "--data", str(long_train), "--max-len", "100000", "--out", out],
                f"{long_train}: example 1 has",
            ),
            (["probe", "familiarity", "--base", ""], "--base: an empty value"),
            ([*arrow, "--opt", "top_k=1", "--opt", "top_k=2"], "--opt top_k=2: top_k is given twice"),
        ):
            _expect_one_error(args, needle, world, monkeypatch, capsys)
    finally:
        link.unlink()
    assert not foreign.read_bytes().count(b"key TEXT"), "a foreign database was changed"


def test_a_merge_that_overflows_is_refused(world: World) -> None:
    from loralab.combination import merge
    from loralab.errors import LoralabError

    with pytest.raises(LoralabError, match=r"--method linear: the merged weights of .* hold NaN or Inf"):
        merge([world.expert, world.expert], "linear", weights=[1e308, 1e308])
    with pytest.raises(LoralabError, match=r"--opt rank=100000: larger than .*'s smaller side \(32\)"):
        merge([world.expert, world.expert], "uniform", rank=100000)
    finite = merge([world.expert, world.expert], "linear", weights=[1.0, 1.0])
    assert all(torch.isfinite(finite.delta(m)).all() for m in finite.modules)


def test_library_ls_reads_the_folder_not_a_stale_index(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = world.tmp / "lib"
    lib.mkdir()
    for name in ("A-B", "B-C"):
        shutil.copytree(world.expert, lib / name)
    for index in ("[]", "{}", '{"experts": 5}', '{"experts": [{"name": "gone"}]}'):
        (lib / "index.json").write_text(index)
        capsys.readouterr()
        assert run_cli(["library", "ls", str(lib)], monkeypatch) == 0
        shown = capsys.readouterr().out
        assert "A-B" in shown and "B-C" in shown and "gone" not in shown
    shutil.rmtree(lib / "B-C")
    capsys.readouterr()
    assert run_cli(["library", "ls", str(lib)], monkeypatch) == 0
    assert "B-C" not in capsys.readouterr().out


def test_library_ls_refuses_what_is_not_a_library(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = world.tmp / "lib"
    (world.tmp / "empty").mkdir()
    shutil.copytree(world.expert, lib / "A-B")
    meta = json.loads((lib / "A-B" / "meta.json").read_text())
    cases: list[tuple[Path, Callable[[], None], str]] = [
        (world.data, lambda: None, f"{world.data}: a file, not a library folder"),
        (world.tmp / "empty", lambda: None, "no experts in it"),
        (lib / "A-B", lambda: None, f"{lib / 'A-B'}: an expert folder, not a library (its library is {lib})"),
        (lib, lambda: (lib / "A-B" / "meta.json").write_text("[1]"), "meta.json: not a JSON object"),
        (
            lib,
            lambda: (lib / "A-B" / "meta.json").write_text(json.dumps({**meta, "examples": "many"})),
            "meta.json: field examples: 'many' is not what loralab writes there",
        ),
        (lib, lambda: (lib / "A-B" / WEIGHTS).unlink(), f"{lib / 'A-B' / WEIGHTS}: file not found"),
    ]
    for path, damage, needle in cases:
        damage()
        assert run_cli(["library", "ls", str(path)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err


def test_a_damaged_run_meta_is_one_line(tmp_path: Path) -> None:
    from loralab.errors import LoralabError
    from loralab.experiments.plan import read_run_meta

    assert read_run_meta(tmp_path) == {}
    for sessions in ('"x"', "[1]", '[{"seconds": "abc"}]', '[{"seconds": true}]'):
        (tmp_path / "meta.json").write_text(f'{{"sessions": {sessions}}}')
        with pytest.raises(LoralabError, match="not a run's metadata"):
            read_run_meta(tmp_path)
    (tmp_path / "meta.json").write_text('{"sessions": [{"seconds": 2.5}, {"started": "now"}]}')
    assert len(read_run_meta(tmp_path)["sessions"]) == 2


def test_a_rerun_that_would_drop_seeds_or_grid_points_says_so(tmp_path: Path) -> None:
    """Resuming `--seeds 0,1,2` without `--seeds` rewrote the plan with seed 0 alone: status and report lost
    the other seeds without a word. A plan from the spec as written is the spec's to change."""
    from types import SimpleNamespace

    from loralab.errors import LoralabError
    from loralab.experiments.runner import check_not_narrowed

    def cells(*records: dict[str, object]) -> list[SimpleNamespace]:
        return [SimpleNamespace(record=r) for r in records]

    old = [{"seed": s, "point": {"datasets.d.variant": v}} for s in (0, 1, 2) for v in ("FF", "RR")]
    (tmp_path / "plan.json").write_text(json.dumps({"cells": [{"record": r} for r in old]}))
    asked = {"overrides": ["--seeds 0,1,2"]}  # what meta.json keeps of the last run's flags
    check_not_narrowed(SimpleNamespace(folder=tmp_path, cells=cells(*old[:1])), {})  # the spec as written
    check_not_narrowed(SimpleNamespace(folder=tmp_path, cells=cells(*old)), asked)  # the same plan: fine
    more = cells(*old, {"seed": 3, "point": {}})
    check_not_narrowed(SimpleNamespace(folder=tmp_path, cells=more), asked)  # more: fine
    with pytest.raises(
        LoralabError, match=r"was run with --seeds 0,1,2; .*seed\(s\) 1, 2, .*pass --seeds 0,1,2"
    ):
        check_not_narrowed(SimpleNamespace(folder=tmp_path, cells=cells(*old[:2])), asked)
    with pytest.raises(LoralabError, match=r"grid point\(s\) datasets.d.variant=RR"):
        check_not_narrowed(SimpleNamespace(folder=tmp_path, cells=cells(*old[::2])), asked)


def test_a_spec_expert_s_bad_lora_setting_is_named_by_its_key(
    tiny_base: Path, twohop_dir: Path, tmp_path: Path
) -> None:
    from loralab.errors import LoralabError
    from loralab.experts.config import ExpertConfig
    from loralab.experts.train import train_expert

    with pytest.raises(LoralabError, match=r"^experts\.ab\.lora\.r 40: larger than"):
        train_expert(
            tiny_base,
            [twohop_dir / "ab.train.jsonl"],
            tmp_path / "e",
            ExpertConfig(r=40, epochs=1),
            option=lambda field: f"experts.ab.lora.{field}",
        )
    assert not (tmp_path / "e").exists()


def test_artifacts_get_the_modes_a_plain_write_would(trained_expert: Path, tmp_path: Path) -> None:
    """Atomic writes create private temp files (0600, 0700); a library others read needs the umask's modes."""
    from loralab.artifacts import UMASK, write_json

    assert trained_expert.stat().st_mode & 0o777 == 0o777 & ~UMASK
    for f in trained_expert.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~UMASK, f
    write_json(tmp_path / "x.json", {})
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~UMASK


def test_a_library_that_is_not_a_list_or_repeats_an_expert_is_one_line(tmp_path: Path) -> None:
    from loralab.experiments.spec import check_spec

    text = (SPECS / "tiny-grid.yaml").read_text()
    assert "  2-combination: [ab, bc]\n" in text
    for library, needle in (
        ("ab", "libraries: 2-combination: expected a list of experts"),
        ("[ab, ab]", "libraries: 2-combination: expert ab is listed twice"),
        ("{experts: [bc, bc]}", "libraries: 2-combination: expert bc is listed twice"),
    ):
        spec = tmp_path / "s.yaml"
        spec.write_text(text.replace("  2-combination: [ab, bc]\n", f"  2-combination: {library}\n"))
        _, problems = check_spec(spec)
        assert len(problems) == 1 and needle in problems[0], problems
