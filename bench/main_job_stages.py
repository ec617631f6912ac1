"""The main job's wall time by stage, read from a finished run's artifacts; with `--sizes`, how each stage
grows with triplets, experts and questions.

Read mode (no computation): give a run folder (WORKDIR/runs/RUN). Its last finished session in meta.json
bounds the run; each stage is read from what the artifacts record:

- setup (venv, pip): not recorded anywhere; pass `--total`, the measured seconds of the whole command
  (`time bash scripts/quickstart.sh`), and setup is what the session and the report leave of it;
- base build: the built-in base's meta.json (`seconds`, `created`), counted when it was built inside the
  session (else shown as cached, with the build time it recorded), and its pretraining rate in model FLOPs
  (6 x parameters x tokens seen, over the recorded seconds); `--measure-peak` adds its utilisation of the bf16
  matmul peak measured at read time (read on an idle machine);
- datasets: from the session's start to the runner's `started` stamp (planning and hashing included), less
  the base build;
- familiarity probe and executor start: from `started` to the first training job's start (local executor:
  that expert's end minus its `train_seconds`, so loading the base and encoding its data count here);
- experts: the local executor runs them one after another, so from the first start to the last expert's
  meta.json `created`; Ray (timeline.json) gives each job's start and end, and experts overlap cells there,
  so both the span and the summed busy time are shown;
- cells: the results store's `created` stamps; diagnostics run after each cell (their diagnostics.json
  `created`), so their share is the time from a cell's row to its diagnostics;
- report: from the session's end to report/report.md's modification time (the `loralab report` process
  included); absent if no report was written.

Stamps have one-second resolution. Artifacts made in an earlier session are listed as reused, not timed.

Sizes mode (runs the spec, trains its experts): `--sizes 4 8` runs SPEC at `--scale` with every dataset's
triplets (and bridge triplets, graph paths) set to each size, each in its own workdir below `--workdir`
(one `$LORALAB_CACHE`: the base is built once, at the first size), reads each run's stages as above, and
prints per stage the seconds per unit of its work (per triplet for datasets, per training example-epoch for
experts, per generated answer for cells and their diagnostics: the questions and the retention probes) at
each size: a per-unit cost that stays put means linear growth in that unit. Two sizes fix a line exactly
and cannot show curvature; give three sizes to see it.

    .venv/bin/python bench/main_job_stages.py loralab-work/runs/bridge-ablation.default [--total SECONDS]
    .venv/bin/python bench/main_job_stages.py --sizes 10 20 \\
        --spec experiments/paper/bridge-ablation.yaml --scale default --workdir loralab-work/stages
    LORALAB_CACHE=$(mktemp -d) .venv/bin/python bench/main_job_stages.py --sizes 2 4 \\
        --spec experiments/paper/bridge-ablation.yaml --scale test --workdir /tmp/stages   # check only
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Stage:
    name: str
    seconds: float | None  # None: not measurable from the artifacts (`note` says why)
    note: str = ""
    units: dict[str, float] = field(default_factory=dict)  # what the stage's work was (examples, questions)
    # base build only: each built-in base's pretraining rate (GFLOP/s), for --measure-peak
    gflops: list[float] = field(default_factory=list)


def fail(message: str) -> NoReturn:
    """Bad input: one line, exit status 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


def utc(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, STAMP)))


def read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{path}: cannot read ({exc})")


def last_session(meta: dict[str, Any], folder: Path) -> tuple[float, float, float]:
    """(start, runner's `started` stamp, end) of the run's last finished session."""
    done = [s for s in meta.get("sessions", []) if "seconds" in s and "finished" in s]
    if not done:
        fail(f"{folder}/meta.json: no finished session (run it to the end first)")
    s = done[-1]
    end = utc(s["finished"])
    return end - float(s["seconds"]), utc(s["started"]), end


def base_stage(plan: dict[str, Any], t0: float, started: float) -> Stage:
    from loralab.models.tiny import BASE_PRESETS, base_preset_dir

    names = sorted({e["base"] for e in plan["experts"]} | {c["base"] for c in plan["cells"]})
    seconds, notes, rates = 0.0, [], []
    for name in names:
        folder = base_preset_dir(name) if name in BASE_PRESETS else Path(name)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            notes.append(f"{name}: no meta.json in {folder} (a model folder, or another $LORALAB_CACHE)")
            continue
        meta = read(meta_path)
        rate = build_rate(meta)
        if rate is not None:
            rates.append(rate[2])
        said = "" if rate is None else describe_rate(*rate)
        if "seconds" not in meta:
            notes.append(f"{name}: a model folder, not built by loralab")
        elif t0 - 2 <= utc(meta["created"]) <= started + 2:
            seconds += float(meta["seconds"])
            notes.append(f"{name}: built in this session{said}")
        else:
            built = f"built {meta['created']} in {meta['seconds']:.0f} s, not counted"
            notes.append(f"{name}: cached ({built}{said})")
    return Stage("base build", seconds, "; ".join(notes), gflops=rates)


def build_rate(meta: dict[str, Any]) -> tuple[float, float, float] | None:
    """A built-in base's pretraining model FLOPs (6 x parameters x tokens seen; the tied embedding counted
    once, as the output matmul) over the seconds its meta records (corpus and tokenizer included, so a lower
    bound on the rate): (tokens, FLOPs, GFLOP/s), or None for a folder that records no pretraining."""
    cfg = meta.get("config", {})
    if not {"steps", "batch_size", "seq_len"} <= cfg.keys() or not {"parameters", "seconds"} <= meta.keys():
        return None
    tokens = float(cfg["steps"] * cfg["batch_size"] * cfg["seq_len"])
    flops = 6.0 * meta["parameters"] * tokens
    return tokens, flops, flops / float(meta["seconds"]) / 1e9


def describe_rate(tokens: float, flops: float, gflops: float) -> str:
    return f"; pretraining {tokens / 1e6:.2f}M tokens, {flops / 1e12:.0f} TFLOP, {gflops:.0f} GFLOP/s"


def dataset_stage(plan: dict[str, Any], t0: float, started: float, base_s: float) -> Stage:
    built = reused = 0
    triplets = 0.0
    for d in plan["datasets"]:
        meta_path = Path(d["path"]) / "meta.json"
        created = utc(read(meta_path)["created"]) if meta_path.is_file() else None
        if created is not None and t0 - 2 <= created <= started + 2:
            built += 1
            triplets += float(d["spec"].get("triplets") or d["spec"].get("paths") or 0)
        else:
            reused += 1
    note = f"{built} built, {reused} reused; planning and content hashing included"
    units = {"datasets": built, "triplets": triplets}
    return Stage("datasets", max(0.0, started - t0 - base_s), note, units)


def expert_jobs(plan: dict[str, Any], t0: float, end: float) -> tuple[list[dict[str, Any]], int]:
    """The metas of the experts trained in the session (with their `end`), and how many were reused."""
    trained, reused = [], 0
    for e in plan["experts"]:
        meta_path = Path(e["path"]) / "meta.json"
        meta = read(meta_path) if meta_path.is_file() else None
        if meta and t0 - 2 <= utc(meta["created"]) <= end + 2:
            trained.append({**meta, "end": utc(meta["created"])})
        else:
            reused += 1
    return sorted(trained, key=lambda m: m["end"]), reused


def cell_rows(plan: dict[str, Any], workdir: Path, t0: float, end: float) -> tuple[list[dict[str, Any]], int]:
    """(key, generations, created, diagnostics created) of the cells stored in the session; how many were
    stored before."""
    db = workdir / "results.sqlite"
    if not db.is_file():
        fail(f"{db}: no results store")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    # every stored example row was generated: the cell's own questions and its retention probes
    query = (
        "SELECT c.key, COUNT(e.cell_id), c.created FROM cells c LEFT JOIN examples e ON e.cell_id = c.id "
        "GROUP BY c.id"
    )
    stored = {k: (n, c) for k, n, c in con.execute(query)}
    con.close()
    rows, before = [], 0
    for c in plan["cells"]:
        if c["key"] not in stored:
            continue
        n, created = stored[c["key"]]
        if not t0 - 2 <= utc(created) <= end + 2:
            before += 1
            continue
        diag = workdir / "diagnostics" / c["key"] / "diagnostics.json"
        diag_t = utc(read(diag)["provenance"]["created"]) if diag.is_file() else None
        rows.append({"key": c["key"], "n": n, "created": utc(created), "diagnosed": diag_t})
    return sorted(rows, key=lambda r: r["created"]), before


def _expert_units(trained: list[dict[str, Any]], reused: int) -> tuple[dict[str, float], str]:
    units = {
        "experts": float(len(trained)),
        "example-epochs": float(sum(m["examples"] * m["config"]["epochs"] for m in trained)),
        "train_seconds": float(sum(m.get("train_seconds", 0.0) for m in trained)),
    }
    note = f"{len(trained)} trained ({units['train_seconds']:.0f} s in the training loops), {reused} reused"
    return units, note


def local_stages(plan: dict[str, Any], workdir: Path, started: float, t0: float, end: float) -> list[Stage]:
    """Probe, experts and cells of the local executor, which runs them one after another."""
    trained, reused = expert_jobs(plan, t0, end)
    cells, before = cell_rows(plan, workdir, t0, end)
    units, note = _expert_units(trained, reused)
    if trained:
        first = trained[0]["end"] - float(trained[0].get("train_seconds", 0.0))
        experts_end = trained[-1]["end"]
        probe = Stage(
            "familiarity probe + executor start", max(0.0, first - started), "first expert's load included"
        )
        experts = Stage("experts", experts_end - first, note, units)
    else:
        experts_end = started
        probe = Stage(
            "familiarity probe + executor start", None, "no expert trained: not separable from cells"
        )
        experts = Stage("experts", 0.0, note, units)
    diag = sum(c["diagnosed"] - c["created"] for c in cells if c["diagnosed"] is not None)
    cell_units = {"cells": float(len(cells)), "generations": float(sum(c["n"] for c in cells))}
    cell_note = (
        f"{len(cells)} evaluated, {before} stored earlier; generations: questions and retention probes"
    )
    return [
        probe,
        experts,
        Stage("cells: evaluation", max(0.0, end - experts_end - diag), cell_note, cell_units),
        Stage("cells: diagnostics", diag, "per-cell loralab.diagnose parts (routing, geometry)", cell_units),
    ]


def ray_stages(
    plan: dict[str, Any], folder: Path, workdir: Path, started: float, t0: float, end: float
) -> list[Stage]:
    """Probe, experts and cells from Ray's timeline.json (jobs overlap: span and summed busy time)."""
    timeline = read(folder / "timeline.json")
    trained, reused = expert_jobs(plan, t0, end)
    cells, before = cell_rows(plan, workdir, t0, end)
    units, note = _expert_units(trained, reused)
    out = [Stage("familiarity probe + Ray start", min((j["start"] for j in timeline), default=end) - started)]
    for kind, label in (("expert", "experts"), ("cell", "cells")):
        jobs = [j for j in timeline if j["kind"] == kind]
        if not jobs:
            out.append(Stage(label, 0.0, "none run in this session"))
            continue
        span = max(j["end"] for j in jobs) - min(j["start"] for j in jobs)
        busy = sum(j["end"] - j["start"] for j in jobs)
        if kind == "expert":
            out.append(
                Stage(label, span, f"{note}; {busy:.0f} s busy over the workers; overlaps cells", units)
            )
        else:
            q = float(sum(c["n"] for c in cells))
            text = f"{len(jobs)} evaluated, {before} stored earlier; {busy:.0f} s busy over the workers"
            out.append(Stage(label, span, text, {"cells": float(len(jobs)), "generations": q}))
    return out


def stages(folder: Path, total: float | None = None) -> tuple[list[Stage], float]:
    """Every stage of the run in `folder` (WORKDIR/runs/RUN) and its last session's wall time; `total`, the
    measured wall time of the whole command (setup, run, report), gives setup as what remains."""
    meta, plan = read(folder / "meta.json"), read(folder / "plan.json")
    workdir = folder.parent.parent
    t0, started, end = last_session(meta, folder)
    base = base_stage(plan, t0, started)
    setup = Stage(
        "setup (venv, packages)",
        None,
        "not recorded in the artifacts: pass --total, the whole command's seconds",
    )
    out = [setup, base, dataset_stage(plan, t0, started, base.seconds or 0.0)]
    if (folder / "timeline.json").is_file() and meta["sessions"][-1].get("executor") == "ray":
        out += ray_stages(plan, folder, workdir, started, t0, end)
    else:
        out += local_stages(plan, workdir, started, t0, end)
    report = folder / "report" / "report.md"
    if report.is_file() and report.stat().st_mtime >= end - 2:
        out.append(Stage("report", report.stat().st_mtime - end, "session end to report.md written"))
    else:
        out.append(Stage("report", None, f"no {report} written after the session"))
    if total is not None:
        after = out[-1].seconds or 0.0
        out[0] = Stage(setup.name, total - (end - t0) - after, "--total less the session and the report")
    return out, end - t0


def print_stages(folder: Path, rows: list[Stage], session: float) -> None:
    print(f"### {folder.name}: last session {session:.0f} s ({session / 60:.1f} min)\n")
    print("| stage | seconds | share of the session | work | how measured |")
    print("|---|---:|---:|---|---|")
    for s in rows:
        sec = "not measurable" if s.seconds is None else f"{s.seconds:.0f}"
        share = "" if s.seconds is None else f"{s.seconds / session:.0%}" if session else ""
        work = ", ".join(f"{v:.0f} {k}" for k, v in s.units.items() if k != "train_seconds")
        print(f"| {s.name} | {sec} | {share} | {work} | {s.note} |")
    print()


def resized(spec: Any, n: int) -> Any:
    """`spec` with every dataset's triplets (bridge triplets, graph paths) set to `n`, grids over them too."""
    sizes = ("triplets", "bridge_triplets", "paths")
    datasets = {
        k: d.model_copy(update={f: n for f in sizes if f in type(d).model_fields})
        for k, d in spec.datasets.items()
    }
    grid = {p: [n] if p.rsplit(".", 1)[-1] in sizes else v for p, v in spec.grid.items()}
    return spec.model_copy(update={"datasets": datasets, "grid": grid})


def run_size(args: argparse.Namespace, n: int) -> Path:
    """Run the spec resized to `n` triplets in its own workdir, then its report, as the main job does."""
    from rich.console import Console

    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec
    from loralab.report.build import build_report, write_report

    spec = resized(load_spec(args.spec, args.scale), n)
    workdir = args.workdir / f"triplets-{n}"
    console = Console(stderr=True)
    plan = run(spec, workdir, args.scale, args.executor, None, console, True, str(args.spec))
    write_report(build_report(plan.folder))
    return plan.folder


PER_UNIT = {  # stage -> the unit its cost should be proportional to
    "datasets": "triplets",
    "experts": "example-epochs",
    "cells: evaluation": "generations",
    "cells: diagnostics": "generations",
    "cells": "generations",
}
MIN_SECONDS = 10.0  # below this at any size, one-second stamps make the exponent meaningless


def print_growth(sizes: list[int], runs: list[list[Stage]]) -> None:
    """Per stage: seconds and seconds per unit at each size, and the log-log slope between the extremes."""
    print("### Growth with triplets\n")
    head = " | ".join(f"{n} triplets" for n in sizes)
    print(f"| stage | unit | {head} | exponent (s ~ unit^b) |")
    print("|---|---|" + "---|" * len(sizes) + "---:|")
    for i, stage in enumerate(runs[0]):
        unit = PER_UNIT.get(stage.name)
        rows = [r[i] for r in runs]
        cells, points = [], []
        for s in rows:
            if s.seconds is None:
                cells.append("-")
                continue
            u = s.units.get(unit or "", 0.0)
            cells.append(f"{s.seconds:.0f} s" + (f" = {s.seconds / u:.3g} s/unit ({u:.0f})" if u else ""))
            if u and s.seconds > 0:
                points.append((u, s.seconds))
        b = "-"
        if any(y < MIN_SECONDS for _, y in points):
            b = f"(a size under {MIN_SECONDS:.0f} s)"
        elif len(points) >= 2 and points[-1][0] != points[0][0]:
            (u1, s1), (u2, s2) = points[0], points[-1]
            b = f"{(math.log(s2) - math.log(s1)) / (math.log(u2) - math.log(u1)):.2f}"
        print(f"| {stage.name} | {unit or '-'} | {' | '.join(cells)} | {b} |")
    print(
        "\nb near 1: proportional to the unit (linear); near 0: flat; above 1: faster than linear. Two sizes "
        "fit any line exactly; per-unit costs that agree at three sizes are the evidence of linearity. The "
        "base build happens only at the first size (one cache)."
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="*", type=Path, help="finished run folder(s): WORKDIR/runs/RUN")
    p.add_argument("--sizes", type=int, nargs="+", help="triplet counts to run the spec at (sizes mode)")
    p.add_argument("--spec", type=Path, help="experiment spec for --sizes")
    p.add_argument("--scale", default="default", help="scale for --sizes (default: default)")
    p.add_argument("--executor", default="local", help="local (stages separable) or ray (default: local)")
    p.add_argument("--workdir", type=Path, default=Path("loralab-work/stages"), help="--sizes workdirs' root")
    p.add_argument(
        "--measure-peak",
        action="store_true",
        help="measure the bf16 matmul peak now (idle machine) and print the base build's MFU against it",
    )
    p.add_argument(
        "--total",
        type=float,
        help="seconds the whole command took (`time bash scripts/quickstart.sh`): gives setup",
    )
    args = p.parse_args()
    if args.sizes:
        if args.run or args.spec is None or len(args.sizes) < 2:
            p.error("--sizes takes --spec and two or more sizes, and no run folder")
        sizes = sorted(set(args.sizes))
        print(f"LORALAB_CACHE={os.environ.get('LORALAB_CACHE', '~/.cache/loralab')}", file=sys.stderr)
        folders = [run_size(args, n) for n in sizes]
        runs = []
        for folder in folders:
            rows, session = stages(folder)
            print_stages(folder, rows, session)
            runs.append(rows)
        print_growth(sizes, runs)
        return
    if not args.run:
        p.error("give a run folder, or --sizes with --spec")
    gflops: list[float] = []
    for folder in args.run:
        if not (folder / "plan.json").is_file():
            fail(f"{folder}: not a run folder (no plan.json); give WORKDIR/runs/RUN")
        rows, session = stages(folder, args.total)
        print_stages(folder, rows, session)
        gflops += [r for s in rows for r in s.gflops]
    if args.measure_peak and gflops:
        from _common import bf16_matmul_peak

        peak = bf16_matmul_peak()
        rates = ", ".join(f"{r:.0f} GFLOP/s = {r / peak:.1%}" for r in gflops)
        print(
            f"base build model FLOPs utilisation: {rates} of the bf16 matmul peak measured now ({peak:.0f} GFLOP/s)"
        )


if __name__ == "__main__":
    main()
