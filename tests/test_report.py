"""`loralab report RUN_FOLDER`: paper-shaped tables with numbers checked against the store by hand, seed
pooling, only the plan's cells, the paper's numbers beside ours, figures, and an HTML page that a real
headless browser renders and that references nothing outside itself."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from loralab.evaluation.score import wilson
from tests.conftest import run_cli

SPECS = Path(__file__).parent / "specs"
PAPER = Path(__file__).parents[1] / "experiments" / "paper"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seeds_run(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-seed tiny grid, run through the CLI at the test scale; returns its workdir."""
    work = tmp_path_factory.mktemp("seeds")
    with pytest.MonkeyPatch.context() as mp:
        assert (
            run_cli(
                [
                    "run",
                    str(SPECS / "report-seeds.yaml"),
                    "--scale",
                    "test",
                    "--workdir",
                    str(work),
                    "--no-probe",
                ],
                mp,
            )
            == 0
        )
    return work


@pytest.fixture(scope="module")
def bridge_report(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Setup 0 of the bridge ablation (named bridge-ablation), run and reported; (workdir, report folder)."""
    work = tmp_path_factory.mktemp("bridge")
    with pytest.MonkeyPatch.context() as mp:
        assert (
            run_cli(
                [
                    "run",
                    str(SPECS / "report-bridge.yaml"),
                    "--scale",
                    "test",
                    "--workdir",
                    str(work),
                    "--no-probe",
                ],
                mp,
            )
            == 0
        )
        assert run_cli(["report", str(work / "runs" / "bridge-ablation.test")], mp) == 0
    return work, work / "runs" / "bridge-ablation.test" / "report"


def _copy(work: Path, tmp_path: Path) -> Path:
    """A private copy of a module fixture's workdir, for tests that change its run."""
    return Path(shutil.copytree(work, tmp_path / "work"))


def _stored(work: Path) -> dict[str, tuple[int, int]]:
    """key -> (n, correct), read from the store with plain SQL."""
    con = sqlite3.connect(work / "results.sqlite")
    try:
        return {k: (n, c) for k, n, c in con.execute("SELECT key, n, correct FROM cells")}
    finally:
        con.close()


def _ours(correct: int, n: int) -> str:
    lo, hi = wilson(correct, n)
    return f"{100 * correct / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] n={n}"


def _table(markdown: str, title_start: str) -> list[list[str]]:
    """The rows (header first) of the Markdown table under the heading that starts with `title_start`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title_start}"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def _report(folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run_cli(["report", str(folder)], monkeypatch) == 0
    return capsys.readouterr().out


def test_seeds_are_pooled_and_numbers_match_the_store(
    seeds_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.experiments.plan import load_plan

    folder = seeds_run / "runs" / "report-seeds.test"
    out = _report(folder, monkeypatch, capsys)
    plan, stored = load_plan(folder), _stored(seeds_run)
    by_method: dict[str, list[tuple[int, int]]] = {}
    for cell in plan.cells:
        if "control" not in cell.record:  # the positive controls' cells are the controls table's
            by_method.setdefault(cell.method, []).append(stored[cell.key])
    assert {m: len(v) for m, v in by_method.items()} == {"uniform": 2, "ties": 2}  # two seeds each
    expected = {m: (sum(n for n, _ in v), sum(c for _, c in v)) for m, v in by_method.items()}
    rows = _table(out, "Results")
    assert rows[0] == ["Library", "Uniform", "TIES"]  # generic layout: no grid, so rows are the library
    assert rows[1] == ["2-combination", _ours(*expected["uniform"][::-1]), _ours(*expected["ties"][::-1])]
    assert expected["uniform"][0] == 2 * 8  # 4 triplets x 2 test templates, per seed
    assert "pooled over seeds 0, 1" in out and "8 of 8 cells done" in out  # 4 and 2 experts x 2 seeds alone
    report = folder / "report"
    assert sorted(p.name for p in report.iterdir()) == [
        "figures",
        "report.csv",
        "report.html",
        "report.json",
        "report.md",
    ]
    assert (report / "figures" / "bars.png").read_bytes().startswith(PNG)
    tidy = [
        r for r in csv.DictReader(io.StringIO((report / "report.csv").read_text())) if r["section"] == "cell"
    ]
    assert [(r["method"], r["seeds"], r["seeds_done"]) for r in tidy] == [
        ("uniform", "0 1", "0 1"),
        ("ties", "0 1", "0 1"),
    ]
    for r in tidy:
        n, correct = expected[r["method"]]
        lo, hi = wilson(correct, n)
        assert (int(r["n"]), int(r["correct"])) == (n, correct)
        assert (float(r["ci_low"]), float(r["ci_high"])) == (round(lo, 4), round(hi, 4))
        assert r["paper_table"] == ""  # the generic layout claims no paper cell


def test_report_json_holds_the_tidy_records_of_the_csv(
    seeds_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """report.json: the controls and one record per cell, numbers unrounded (pooled counts from the store,
    their Wilson interval, each seed's accuracy), the same records as report.csv's rows."""
    from loralab.experiments.plan import load_plan

    folder = seeds_run / "runs" / "report-seeds.test"
    _report(folder, monkeypatch, capsys)
    doc = json.loads((folder / "report" / "report.json").read_text())
    assert (doc["run"], doc["scale"], doc["cells_done"], doc["cells_total"]) == (
        "report-seeds.test",
        "test",
        8,
        8,
    )
    plan, stored = load_plan(folder), _stored(seeds_run)
    per_seed: dict[str, dict[int, tuple[int, int]]] = {}
    for cell in plan.cells:
        if "control" not in cell.record:
            per_seed.setdefault(cell.method, {})[int(cell.record["seed"])] = stored[cell.key]
    assert [c["method"] for c in doc["cells"]] == ["uniform", "ties"]
    for record in doc["cells"]:
        seeds = per_seed[record["method"]]
        n, correct = sum(v[0] for v in seeds.values()), sum(v[1] for v in seeds.values())
        assert (record["section"], record["n"], record["correct"]) == ("cell", n, correct)
        assert record["accuracy"] == correct / n and [record["ci_low"], record["ci_high"]] == list(
            wilson(correct, n)
        )
        assert record["seeds"] == [0, 1] and record["seeds_done"] == [0, 1]
        assert record["seed_values"] == [[s, c / k] for s, (k, c) in sorted(seeds.items())]
        assert record["members"] == "ab+bc" and record["confounded"] is bool(record["confounded_reason"])
        assert record["retained_ab_n"] == 16 and record["paper_table"] is None
        assert list(record) == doc["columns"]
    pc1 = doc["controls"][0]
    assert (pc1["control"], pc1["subject"], pc1["n"], pc1["threshold"]) == (
        "PC1",
        "ab alone on A→B",
        16,
        0.95,
    )
    assert pc1["verdict"] == "too few questions (n<20)"
    rows = list(csv.DictReader(io.StringIO((folder / "report" / "report.csv").read_text())))
    assert len(rows) == len(doc["controls"]) + len(doc["cells"]) and list(rows[0]) == doc["columns"]
    for row, record in zip(rows, [*doc["controls"], *doc["cells"]], strict=True):
        assert (row["section"], row["n"], row["correct"]) == (
            record["section"],
            str(record["n"]),
            str(record["correct"]),
        )
        assert row["accuracy"] == ("" if record["accuracy"] is None else f"{record['accuracy']:.4f}")


def test_pooling_sums_counts_over_seeds_and_keeps_missing_ones_visible(seeds_run: Path) -> None:
    """Made-up counts (the test base answers nothing right): 3/8 and 5/8 pool to 8/16, Wilson of 8/16."""
    from loralab.evaluation.retention import Rate
    from loralab.experiments.plan import load_plan
    from loralab.report.layouts import GENERIC, build_table, pool

    plan = load_plan(seeds_run / "runs" / "report-seeds.test")
    counts = {0: 3, 1: 5}
    stored = {
        c.key: {
            "n": 8,
            "correct": counts[c.record["seed"]],
            "metrics": {"retained_ab": Rate(c.record["seed"], 4)},
        }
        for c in plan.cells
        if c.method == "uniform" or c.record["seed"] == 0
    }
    uniform, ties = pool(plan, stored)
    assert (uniform.correct, uniform.n, uniform.seeds, uniform.done) == (8, 16, [0, 1], [0, 1])
    assert uniform.ci == wilson(8, 16) and uniform.metrics["retained_ab"] == Rate(1, 8)
    assert (ties.correct, ties.n, ties.done) == (3, 8, [0])
    assert ties.ours() == _ours(3, 8) + " (1/2 seeds)"
    table = build_table(GENERIC, [uniform, ties])
    assert table.body == [["2-combination", "50.0 [28.0, 72.0] n=16", _ours(3, 8) + " (1/2 seeds)"]]


def test_only_the_plans_cells_count(
    seeds_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newer spec with the same name (one seed, one method) hides the older run's stored cells."""
    work = _copy(seeds_run, tmp_path)
    spec = tmp_path / "report-seeds.yaml"
    text = (SPECS / "report-seeds.yaml").read_text()
    spec.write_text(
        text.replace("seeds: [0, 1]", "seeds: [0]").replace(
            "  - name: ties\n    options: {density: 0.5}\n", ""
        )
    )
    assert (
        run_cli(["run", str(spec), "--scale", "test", "--workdir", str(work), "--no-probe"], monkeypatch) == 0
    )
    assert len(_stored(work)) == 8  # the older cells (and their controls) are still in the store ...
    out = _report(work / "runs" / "report-seeds.test", monkeypatch, capsys)
    rows = _table(out, "Results")  # ... but not in the report
    assert rows[0] == ["Library", "Uniform"] and len(rows) == 2 and rows[1][1].endswith("n=8")
    assert "3 of 3 cells done" in out and "of seed 0" in out  # its cell and its two experts alone


def test_a_run_with_missing_cells_says_how_to_finish(
    seeds_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interrupted run: the plan of three seeds was written, the third seed's cells were not."""
    from loralab.artifacts import write_json
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec

    work = _copy(seeds_run, tmp_path)
    spec = tmp_path / "report-seeds.yaml"
    spec.write_text((SPECS / "report-seeds.yaml").read_text().replace("seeds: [0, 1]", "seeds: [0, 1, 2]"))
    p = plan(load_spec(spec, "test"), work, "test")
    write_json(p.folder / "plan.json", p.to_json())
    out = _report(p.folder, monkeypatch, capsys)
    assert (
        f"8 of 12 cells done (run `loralab run {SPECS / 'report-seeds.yaml'} --scale test --workdir "
        f"{work.resolve()}` to finish)" in out
    )
    assert all(cell.endswith("(2/3 seeds)") for cell in _table(out, "Results")[1][1:])
    # a run started with --seeds (or --only) is finished with the same flags, which its meta.json keeps
    meta = json.loads((p.folder / "meta.json").read_text())
    write_json(p.folder / "meta.json", {**meta, "overrides": ["--seeds 0,1,2"]})
    assert "--scale test --seeds 0,1,2 --workdir" in _report(p.folder, monkeypatch, capsys)


def test_bridge_ablation_has_the_papers_numbers_beside_ours(bridge_report: tuple[Path, Path]) -> None:
    from loralab.experiments.plan import load_plan
    from loralab.report.paper import paper_number

    work, report = bridge_report
    markdown = (report / "report.md").read_text()
    rows = _table(markdown, "Table 1 / Table 9")
    assert rows[0] == ["Setup", "LoRA 1", "LoRA 2", "Uniform", "Uniform: paper", "Arrow", "Arrow: paper"]
    stored = _stored(work)
    ours = {c.method: stored[c.key] for c in load_plan(work / "runs" / "bridge-ablation.test").cells}
    paper = {m: paper_number(9, setup=0, method=m, model="Qwen2.5-3B-Instruct") for m in ("uniform", "arrow")}
    assert paper == {"uniform": 3.9, "arrow": 1.0}
    uniform, arrow = (_ours(ours[m][1], ours[m][0]) for m in ("uniform", "arrow"))
    assert rows[1] == ["Setup 0", "R1", "R2", uniform, "3.9", arrow, "1"]
    assert "Qwen2.5-3B-Instruct (Table 9 of arXiv 2506.13479" in markdown
    tidy = next(
        r for r in csv.DictReader(io.StringIO((report / "report.csv").read_text())) if r["section"] == "cell"
    )
    assert (tidy["paper_table"], tidy["paper_accuracy"], tidy["paper_models"]) == ("9", "0.0390", "6")
    assert (tidy["paper_min"], tidy["paper_max"]) == ("0.0290", "0.0780")  # Uniform, setup 0, six models


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in ("src", "href", "srcset", "data", "poster", "action", "background"):
                self.urls.append((tag, name, value or ""))


def test_html_embeds_its_figures_and_references_nothing_outside(bridge_report: tuple[Path, Path]) -> None:
    html = (bridge_report[1] / "report.html").read_text()
    refs = _Refs()
    refs.feed(html)
    assert {"table", "img", "style"} <= refs.tags and refs.urls == []  # no link, script or stylesheet
    assert len(refs.images) == 1  # Figure 1-like (no Setup 1 and 2, so no Figure 2)
    for src in refs.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :], validate=True).startswith(PNG)
    outside = html.replace("data:image/png;base64,", "")
    assert (
        "http:" not in outside
        and "https:" not in outside
        and "url(" not in outside
        and "@import" not in outside
    )
    assert "Setup 0" in html and "Run" in html and "git_revision" in html


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_html_renders_in_a_headless_browser(bridge_report: tuple[Path, Path], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "no chromium on PATH (Debian: apt-get install chromium); the HTML is checked by parsing only"
        )
    from PIL import Image

    shot, profile = tmp_path / "shot.png", tmp_path / "profile"
    profile.mkdir()
    flags = (
        "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
    )
    flags += " --disable-component-update --disable-sync"
    page = (bridge_report[1] / "report.html").resolve().as_uri()
    cmd = [
        browser,
        *flags.split(),
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
    ]
    subprocess.run([*cmd, page], capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as img:
        assert img.size == (1200, 2000)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 100  # text, table shading, the figure: far from a blank page


def _fake_stored(plan: Any, correct: int = 2, n: int = 8) -> dict[str, dict[str, Any]]:
    return {c.key: {"n": n, "correct": correct, "metrics": {}} for c in plan.cells}


@pytest.fixture
def tmp_spec(tmp_path: Path) -> Iterator[Any]:
    def write(text: str) -> Path:
        path = tmp_path / "spec.yaml"
        path.write_text(text)
        return path

    yield write


def test_figure2_from_setups_1_and_2_with_table_8s_numbers(tiny_base: Path, tmp_path: Path) -> None:
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec
    from loralab.report.figures import setups_figure
    from loralab.report.layouts import build_table, layout_for, pool

    p = plan(load_spec(PAPER / "figure2.yaml", "test"), tmp_path, "test")
    groups = pool(p, _fake_stored(p))
    table = build_table(layout_for("figure2"), groups)
    assert [r[0] for r in table.body] == ["Setup 1", "Setup 2"]
    assert [(r[4], r[6]) for r in table.body] == [("0", "5.1"), ("3.9", "73.5")]  # Table 8 MLP, Qwen2.5-3B
    assert table.body[0][1] == "F1 + R1 + R2 + R12 CoT (B_R)"
    png = setups_figure(groups)
    assert png is not None and png.startswith(PNG)
    assert (
        setups_figure([g for g in groups if g.record["point"]["datasets.setup.setup"] == "setup-2"]) is None
    )


def test_table6_layout_rows_are_dataset_and_library(tiny_base: Path, tmp_path: Path, tmp_spec: Any) -> None:
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec
    from loralab.report.layouts import build_table, layout_for, pool

    spec = tmp_spec(
        """
name: table6-familiarity
bases: [test]
datasets: {f: {kind: setup, setup: familiarity-FF, triplets: 3}}
experts:
  a: {train: [{dataset: f, file: lora1.train.jsonl}]}
  b: {train: [{dataset: f, file: lora2.train.jsonl}]}
  c: {train: [{dataset: f, file: lora3.train.jsonl}]}
libraries: {2-combination: [a, b], 3-combination: [a, b, c], oracle expert: [c]}
methods: [{name: uniform}, {name: arrow, options: {top_k: 2}}]
evaluations: [{dataset: f}]
grid: {datasets.f.setup: [familiarity-FF, familiarity-RR]}
"""
    )
    p = plan(load_spec(spec), tmp_path)
    table = build_table(
        layout_for("table6-familiarity"), pool(p, _fake_stored(p)), model="Qwen2.5-14B-Instruct"
    )
    assert table.header == ["Dataset", "Library", "Uniform", "Uniform: paper", "Arrow", "Arrow: paper"]
    assert [r[:2] for r in table.body] == [
        [d, lib] for d in ("FF", "RR") for lib in ("2-combination", "3-combination", "oracle expert")
    ]
    ff3, rr_oracle = table.body[1], table.body[5]
    assert (ff3[2], ff3[3], ff3[5]) == (_ours(2, 8), "7", "70")  # Table 6, FF, Qwen2.5-14B-Instruct
    assert (rr_oracle[3], rr_oracle[5]) == ("100", "100")  # a single expert: the paper's one number


def test_graph_layout_columns_are_the_graph_variants(tiny_base: Path, tmp_path: Path, tmp_spec: Any) -> None:
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec
    from loralab.report.figures import bars
    from loralab.report.layouts import build_table, layout_for, pool

    text = (PAPER / "table11-graph.yaml").read_text().replace("bases: [default]", "bases: [test]")
    for size, small in (
        ("paths: 100", "paths: 3"),
        ("u1: 100", "u1: 8"),
        ("u2: 100", "u2: 8"),
        ("u3: 100", "u3: 8"),
    ):
        text = text.replace(size, small)
    p = plan(load_spec(tmp_spec(text)), tmp_path)
    groups = pool(p, _fake_stored(p, correct=1))
    layout = layout_for("table11-graph")
    table = build_table(layout, groups)
    assert table.header == [
        "Method",
        "Disjoint graphs",
        "Disjoint graphs: paper",
        "Shared graphs",
        "Shared graphs: paper",
    ]
    assert table.body == [
        ["Uniform", _ours(1, 8), "0", _ours(1, 8), "0.3"],
        ["Arrow", _ours(1, 8), "0.8", _ours(1, 8), "4.4"],
    ]
    png = bars(layout, groups, table.title)
    assert png is not None and png.startswith(PNG)


def test_paper_numbers_by_table_and_row() -> None:
    from loralab.report.paper import paper_number, paper_rows

    assert paper_number(9, setup=2, method="arrow", model="Qwen2.5-3B-Instruct") == 73.5
    assert paper_number(1, setup=2, model="Qwen2.5-3B-Instruct") == 73.5  # Table 1 = Table 9's Arrow rows
    assert paper_number(8, setup=1, method="arrow", targets="both", model="Qwen2.5-7B-Instruct") == 17.6
    assert paper_number(10, method="cat") == 21.0
    assert paper_number(11, graph="shared", method="arrow", model="DeepSeek-R1-Distill-Llama-70B") == 21.1
    assert (
        paper_number(9, setup=1, method="arrow", model="Qwen2.5-3B-Instruct") is None
    )  # Setup 1 is Table 8's
    with pytest.raises(ValueError, match="name more fields"):
        paper_number(9, setup=2)
    keys = [tuple(sorted((k, str(v)) for k, v in r.items() if k != "accuracy")) for r in paper_rows()]
    assert len(keys) == len(set(keys)) == 365  # every published cell once, named by its table and row


def test_report_flags_fit_the_input(
    seeds_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, folder = seeds_run / "results.sqlite", seeds_run / "runs" / "report-seeds.test"
    assert run_cli(["report", str(db), "--out", str(tmp_path / "r")], monkeypatch) == 2
    assert run_cli(["report", str(folder), "--format", "csv"], monkeypatch) == 2
    assert run_cli(["report", str(folder), "--paper-model", "GPT-9"], monkeypatch) == 2
    assert run_cli(["report", str(tmp_path)], monkeypatch) == 2  # a folder without plan.json
    assert "not a run folder" in capsys.readouterr().err
    assert run_cli(["report", str(folder), "--out", str(tmp_path / "elsewhere")], monkeypatch) == 0
    assert (tmp_path / "elsewhere" / "report.html").is_file() and not list(tmp_path.glob(".tmp-*"))
    assert (
        run_cli(["report", str(folder), "--out", str(tmp_path / "elsewhere")], monkeypatch) == 0
    )  # a report
    capsys.readouterr()
    # a report replaces its folder whole: never the workdir, the run folder, or any folder of other files
    before = sorted(p.relative_to(seeds_run) for p in seeds_run.rglob("*"))
    for out, named in (
        (seeds_run, "datasets"),
        (folder, "meta.json"),
        (seeds_run / "runs", "report-seeds.test"),
    ):
        assert run_cli(["report", str(folder), "--out", str(out)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: holds other files than a report (" in err and named in err
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(seeds_run) for p in seeds_run.rglob("*")) == before
    older = tmp_path / "older"  # a report of an older loralab, before report.json existed: replaced
    (older / "figures").mkdir(parents=True)
    (older / "report.md").write_text("old")
    assert run_cli(["report", str(folder), "--out", str(older)], monkeypatch) == 0
    assert (older / "report.json").is_file() and (older / "report.md").read_text() != "old"
    assert run_cli(["report", str(db), "--format", "csv"], monkeypatch) == 0  # a database, as before
    capsys.readouterr()
    assert run_cli(["report", str(db), "--digest"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "--digest: only with a run folder" in err and "Traceback" not in err


def test_digest_lines_from_the_tidy_records(
    seeds_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--digest`: one line per control and per cell, pooled with its Wilson interval, each seed, the
    between-seed t interval (hand-worked below), retention, and the confounded reason."""
    from loralab.report.digest import between, digest, given_both, pooled, seeds

    row = {"n": 40, "correct": 5, "accuracy": 5 / 40, "ci_low": wilson(5, 40)[0], "ci_high": wilson(5, 40)[1]}
    assert pooled(row) == "12.5 [5.5, 26.1] n=40" and pooled({"n": 0}) == "- n=0"
    # [0.1, 0.2, 0.3]: mean 0.2, t_{0.975,2} * sd / sqrt(3) = 4.303 * 0.1 / 1.732 = 0.2484 -> [0.0 (clipped), 44.8]
    three = {"seed_values": [[0, 0.1], [1, 0.2], [2, 0.3]], "seed_mean": 0.2, "seed_t_halfwidth": 0.2484}
    assert seeds(three) == "0: 10.0 / 1: 20.0 / 2: 30.0" and between(three) == "t [0.0, 44.8]"
    assert between({"seed_values": [[0, 0.5]], "seed_mean": 0.5, "seed_t_halfwidth": 0.0}) == "-"
    # two-hop given both kept: 1 of the 4 questions whose triplet kept both facts; none kept; not measured
    assert (
        given_both({"retained_both_n": 60, "twohop_given_both": 0.25, "twohop_given_both_n": 4})
        == "25.0 (1 of 4)"
    )
    assert (
        given_both({"retained_both_n": 60, "twohop_given_both_n": 0}) == "- (n=0)" and given_both({}) == "-"
    )
    folder = seeds_run / "runs" / "report-seeds.test"
    capsys.readouterr()
    assert run_cli(["report", str(folder), "--digest"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith(digest(json.loads((folder / "report" / "report.json").read_text())))
    cells = [line for line in out.splitlines() if line.startswith("| - | 2-combination |")]
    tidy = json.loads((folder / "report" / "report.json").read_text())["cells"]
    assert [r["method"] for r in tidy] == ["uniform", "ties"]
    assert [c.split(" | ")[2] for c in cells] == ["uniform", "ties (density=0.5)"]  # options told apart
    for line, r in zip(cells, tidy, strict=True):
        assert (
            pooled(r) in line and seeds(r) in line and between(r) in line and f"| {given_both(r)} |" in line
        )
        assert line.endswith(f"† {r['confounded_reason']} |" if r["confounded"] else " - |")
    assert "| PC1 | ab alone on A→B |" in out


def test_paper_match_recognises_experts_by_their_training_files() -> None:
    from loralab.report.paper import paper_match

    ev = {"dataset": "d", "split": "test", "prompting": "cot", "file": "ac_cot.test.jsonl"}
    record: dict[str, Any] = {
        "evaluation": ev,
        "datasets": {"d": {"kind": "setup", "setup": "familiarity-HH"}},
        "members": ["x", "y", "z"],
        "targets": {"x": "mlp", "y": "mlp", "z": "mlp"},
        "method": "arrow",
        "options": {},
    }
    files = [["lora1.train.jsonl"], ["lora2.train.jsonl"], ["lora3.train.jsonl"]]
    match = paper_match(record, files)
    assert match is not None and (match.table, match.value("Qwen2.5-3B-Instruct")) == (
        "6",
        ("Qwen2.5-3B-Instruct", 52),
    )
    oracle = paper_match({**record, "method": "oracle", "options": {"expert": "z"}}, files)
    assert (
        oracle is not None
        and oracle.fields["library"] == "oracle expert"
        and set(oracle.values.values()) == {100}
    )
    assert paper_match(record, [files[1], files[0], files[2]]) is None  # not the paper's library
    assert paper_match({**record, "evaluation": {**ev, "file": "ac.test.jsonl"}}, files) is None  # not CoT
    attention = {**record, "targets": {m: "attention" for m in "xyz"}}
    assert paper_match(attention, files) is None  # Table 7 has FF only
    ff = paper_match({**attention, "datasets": {"d": {"kind": "setup", "setup": "familiarity-FF"}}}, files)
    assert ff is not None and (ff.table, ff.value("Qwen2.5-3B-Instruct")) == (
        "7",
        ("Qwen2.5-14B-Instruct", 39),
    )
    rr = {"kind": "twohop", "variant": "RR", "relations": "spouse_born_in"}
    cat = {
        **record,
        "datasets": {"d": rr},
        "members": ["x", "y"],
        "targets": {"x": "mlp", "y": "mlp"},
        "method": "cat_learned",
        "evaluation": {**ev, "triplets": "second-half"},
    }
    half = paper_match(cat, [["ab.train.jsonl"], ["bc.train.jsonl"]])
    assert half is not None and (half.table, half.values) == ("10", {"LLaMA-7B": 21.0})
    assert paper_match({**cat, "evaluation": ev}, [["ab.train.jsonl"], ["bc.train.jsonl"]]) is None


def test_a_shared_expert_still_matches_the_papers_setup(tiny_base: Path, tmp_path: Path) -> None:
    """Setup 5's LoRA 1 trains on the same bytes as setup 0's, so the plan holds one expert whose files sit in
    setup 0's folder; the row must still be recognised as Table 9's setup 5 (6.9 Uniform, 10.8 Arrow)."""
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec
    from loralab.report.layouts import build_table, layout_for, pool

    p = plan(load_spec(PAPER / "bridge-ablation.yaml", "test"), tmp_path, "test")
    assert len(p.experts) < 2 * 9  # shared experts exist, or this test checks nothing
    table = build_table(layout_for("bridge-ablation"), pool(p, _fake_stored(p)), model="Qwen2.5-3B-Instruct")
    rows = {r[0]: r for r in table.body}
    assert set(rows) == {f"Setup {i}" for i in range(9)}
    # (Uniform: paper, Arrow: paper) per setup; setup 1 is evaluated on F12, which Table 9 has no row for
    papers = {s: (rows[f"Setup {s}"][4], rows[f"Setup {s}"][6]) for s in (0, 4, 5, 8)}
    assert papers == {0: ("3.9", "1"), 4: ("2", "9.8"), 5: ("6.9", "10.8"), 8: ("2", "43.1")}


def test_cpu_real_layout_puts_table_6_and_table_9_rows_together(tiny_base: Path, tmp_path: Path) -> None:
    from loralab.experiments.plan import plan
    from loralab.experiments.spec import load_spec
    from loralab.report.layouts import build_table, layout_for, pool

    p = plan(load_spec(PAPER / "cpu-real.yaml", "test"), tmp_path, "test")
    assert len(p.experts) == 8  # setup 0 trains on familiarity-RR's files: its experts are shared
    table = build_table(layout_for("cpu-real"), pool(p, _fake_stored(p)))
    assert table.header == ["Dataset", "Library", "Uniform", "Uniform: paper", "Arrow", "Arrow: paper"]
    # Qwen2.5-3B-Instruct: Table 6 HH 4.9 / 5.9 and RR 3.9 / 1; Table 9 setup 0 3.9 / 1, setup 2 3.9 / 73.5,
    # setup 8 2 / 43.1
    assert [(r[0], r[3], r[5]) for r in table.body] == [
        ("HH", "4.9", "5.9"),
        ("RR", "3.9", "1"),
        ("Setup 0", "3.9", "1"),
        ("Setup 2", "3.9", "73.5"),
        ("Setup 8", "2", "43.1"),
    ]
    assert {r[2] for r in table.body} == {_ours(2, 8)}


def test_wall_time_adds_up_the_experts_training_times(bridge_report: tuple[Path, Path]) -> None:
    """A run resumed over sessions has no single wall time; the report also sums its experts' own times."""
    import json

    work, report = bridge_report
    times = sorted(
        json.loads((e / "meta.json").read_text())["train_seconds"] for e in (work / "experts").iterdir()
    )
    assert len(times) == 2  # setup 0's LoRA 1 and LoRA 2
    line = next(x for x in (report / "report.md").read_text().splitlines() if x.startswith("- wall time:"))
    assert line.endswith(
        f"; its 2 experts trained in {sum(times):.0f} s in all "
        f"({min(times):.0f}-{max(times):.0f} s each, whichever session trained them)"
    )


@pytest.mark.parametrize(
    ("name", "damage", "said"),
    [
        ("plan.json", lambda plan: {k: v for k, v in plan.items() if k != "run"}, "not a plan written by"),
        ("plan.json", lambda plan: {**plan, "run": {}}, "not a plan written by"),
        (
            "plan.json",
            lambda plan: {**plan, "cells": [{**plan["cells"][0], "record": []}]},
            "not a plan written by",
        ),
        ("plan.json", lambda plan: [plan], "not a JSON object"),
        ("plan.json", lambda plan: {**plan, "cells": {}}, "not a plan written by this loralab ('cells'"),
        ("plan.json", lambda plan: {**plan, "cells": []}, "not a plan written by this loralab ('cells'"),
        ("plan.json", lambda plan: {**plan, "experts": {}}, "not a plan written by this loralab ('experts'"),
        ("meta.json", lambda meta: [1], "not a JSON object"),
        ("meta.json", lambda meta: "", "not valid JSON"),
        ("spec.json", lambda spec: [1], "not a JSON object"),  # read by report only
        ("spec.json", lambda spec: {**spec, "tables": 5}, "tables: not a list"),
        ("spec.json", lambda spec: {**spec, "tables": [5]}, "tables.0: "),
        ("spec.json", lambda spec: {**spec, "tables": [{"bogus": 1}]}, "tables.0."),
    ],
)
def test_a_damaged_run_folder_is_one_line(
    name: str,
    damage: Any,
    said: str,
    seeds_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`status` and `report` on a run whose plan.json or meta.json was damaged (`report` alone for spec.json,
    which only it reads): one line naming the file."""
    folder = tmp_path / "w" / "runs" / "report-seeds.test"
    shutil.copytree(seeds_run / "runs" / "report-seeds.test", folder)
    damaged = damage(json.loads((folder / name).read_text()))
    (folder / name).write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    commands = [["status", str(folder)]] if name != "spec.json" else []
    for command in [*commands, ["report", str(folder), "--out", str(tmp_path / "r")]]:
        assert run_cli(command, monkeypatch) == 2
        err = capsys.readouterr().err
        assert f"{folder / name}: {said}" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("config", "{bad", "config: not valid JSON"),
        ("config", "[1]", "config: not a JSON object"),
        ("accuracy", "abc", "accuracy and its interval"),
        ("ci_high", 1.5, "accuracy and its interval"),
        ("correct", 99, ", correct 99: need whole numbers with 0 <= correct <= n"),
        ("n", "forty", "n 'forty'"),
    ],
)
def test_a_damaged_results_row_is_one_line(
    column: str,
    value: Any,
    said: str,
    seeds_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cell row changed by hand (or by another program): `report` of the run and of the database name the
    database and the cell in one line, and write nothing."""
    work = tmp_path / "w"
    shutil.copytree(seeds_run / "runs", work / "runs")
    shutil.copy(seeds_run / "results.sqlite", work / "results.sqlite")
    con = sqlite3.connect(work / "results.sqlite")
    with con:
        cell = con.execute("SELECT min(id) FROM cells").fetchone()[0]
        con.execute(f"UPDATE cells SET {column} = ? WHERE id = ?", (value, cell))
    con.close()
    run_folder = ["report", str(work / "runs" / "report-seeds.test"), "--out", str(tmp_path / "r")]
    for command in (run_folder, ["report", str(work / "results.sqlite")]):
        assert run_cli(command, monkeypatch) == 2
        err = capsys.readouterr().err
        assert f"{work / 'results.sqlite'}: cell {cell}: " in err and said in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()
