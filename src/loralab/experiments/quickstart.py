"""The quick start: does combining LoRA experts compose two-hop knowledge? (RR two-hop, CoT prompting)

It is a spec like any other (`quickstart.yaml` beside this module): `quickstart` runs it with
`loralab.experiments.runner.run` (content keys, lock, resume, controls) and writes its report
(`loralab.report.build`), so `loralab quickstart` is `loralab run SPEC` followed by `loralab report`. A rerun
finds every cell stored and adds no row.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from loralab.diagnose import CHEAP
from loralab.experiments.runner import run
from loralab.experiments.spec import load_spec
from loralab.report.build import RunReport, build_report, write_report

SPEC = Path(__file__).with_name("quickstart.yaml")
"""The quick start's spec: RR, 30 triplets, 50 templates; experts A-B, B-C, A-C-oracle (attention and MLP,
3 epochs); the base, each expert alone, the 2- and 3-combination under Uniform and Arrow."""


def quickstart(
    workdir: Path,
    scale: str | None = None,
    console: Console | None = None,
    probe: bool = True,
    diagnostics: tuple[str, ...] = CHEAP,
) -> RunReport:
    """Run (or resume) the quick-start spec at `scale` (None: the spec as written) in `workdir`,
    write its report into RUN_FOLDER/report and return it."""
    spec = load_spec(SPEC, scale)
    plan = run(spec, workdir, scale, "local", None, console, probe, str(SPEC), diagnostics)
    report = build_report(plan.folder)
    write_report(report)
    return report
