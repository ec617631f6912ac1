"""Run loralab's GSM-Symbolic template engine over the 250 released templates and compare with the release.

Reads the templates and `GSM_p2.jsonl` where they lie (`../shared/data/gsm-symbolic` from the project's
root by default; their licence forbids copying them into the project) and prints:

1. how many templates parse and instantiate (one instance each, seeded), with the failures by reason;
2. for the P2 templates, the answers of our instances next to the 50 released instances per template:
   share of whole-number answers, of negative ones, and their magnitudes (median, and how many templates'
   medians agree within a factor of 2 and of 10), plus question length in words.

    .venv/bin/python bench/gsm_real_templates.py [--data DIR] [--seed 0] [--p2-instances 20]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError
from loralab.gsm.datasets import read_released
from loralab.gsm.templates import DEFAULT_TRIES, LEVELS, Template, instantiate, load_template


def reason_of(message: str) -> str:
    """A failure message reduced to its kind (the template-specific details dropped)."""
    if "differs from #answer" in message:
        return "the solution's #### line disagrees with #answer (a template inconsistency)"
    if "no draw met the conditions" in message:
        return "no draw met the conditions within the try budget"
    return message.split(": ", 1)[-1]


def instantiation_rate(root: Path, seed: int, max_tries: int) -> tuple[dict[str, Template], list[str]]:
    templates: dict[str, Template] = {}
    parse_fail: Counter[str] = Counter()
    inst_fail: Counter[str] = Counter()
    lenient = 0
    total = 0
    tries: dict[str, int] = {}
    details = []
    start = time.perf_counter()
    for level in LEVELS:
        for path in sorted((root / "templates" / level).glob("*.json")):
            total += 1
            try:
                t = load_template(path, level)
            except LoralabError as exc:
                parse_fail[str(exc).split(": ", 1)[-1]] += 1
                details.append(f"  parse   {level}/{path.name}: {str(exc).split(': ', 1)[-1]}")
                continue
            templates[t.id] = t
            try:
                tries[t.id] = instantiate(t, seed, max_tries).tries
            except LoralabError as exc:
                inst_fail[reason_of(str(exc))] += 1
                details.append(f"  draw    {level}/{path.name}: {str(exc).split(': ', 1)[-1]}")
                try:
                    instantiate(t, seed, max_tries, check_answer=False)
                    lenient += 1
                except LoralabError:
                    pass
    ok = len(templates) - sum(inst_fail.values())
    print(f"## Instantiation ({time.perf_counter() - start:.0f} s, seed {seed}, at most {max_tries} draws)\n")
    per_level = ", ".join(f"{lv} {sum(1 for t in templates.values() if t.level == lv)}" for lv in LEVELS)
    print(f"- templates: {total}; parsed {len(templates)} ({per_level})")
    print(f"- instantiated with the answer check: {ok} / {total} ({100 * ok / total:.1f}%)")
    print(f"- instantiated trusting the solution's #### line instead: {ok + lenient} / {total}")
    hard = sorted((n, tid) for tid, n in tries.items() if n > 10_000)
    print(
        f"- draws needed (seed {seed}): median {statistics.median(tries.values()):g}; over 10,000 for "
        + (", ".join(f"{tid} ({n})" for n, tid in hard) or "none")
    )
    for reason, n in (parse_fail + inst_fail).most_common():
        print(f"- failed, {n}: {reason}")
    print("\n".join(details))
    return templates, details


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _summary(answers: list[float]) -> dict[str, float]:
    return {
        "whole": sum(a == int(a) for a in answers) / len(answers),
        "negative": sum(a < 0 for a in answers) / len(answers),
        "median_abs": statistics.median(abs(a) for a in answers),
    }


def p2_comparison(root: Path, templates: dict[str, Template], per_template: int, max_tries: int) -> None:
    released: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in read_released(root / "GSM_p2.jsonl"):
        released[row["template"]].append(row)
    ours: dict[int, list[float]] = {}
    words: dict[str, list[int]] = {"ours": [], "released": []}
    unchecked: list[str] = []
    missed: Counter[str] = Counter()
    start = time.perf_counter()
    for number in sorted(released):
        t = templates.get(f"p2/{number:04d}")
        if t is None:
            continue
        got = []
        for k in range(per_template):
            try:
                inst = instantiate(t, f"cmp:{k}", max_tries, check_answer=t.id not in unchecked)
            except LoralabError as exc:
                if "differs from #answer" in str(exc):
                    unchecked.append(t.id)
                    inst = instantiate(t, f"cmp:{k}", max_tries, check_answer=False)
                else:
                    missed[t.id] += 1
                    continue
            got.append(float(inst.answer))
            words["ours"].append(len(inst.question.split()))
        if got:
            ours[number] = got
    for rows in released.values():
        words["released"].extend(len(r["prompt"].split()) for r in rows)
    theirs = {n: [_number(r["gold"]) for r in rows] for n, rows in released.items() if n in ours}
    a = _summary([x for v in ours.values() for x in v])
    b = _summary([x for v in theirs.values() for x in v])
    ratio = {
        n: (statistics.median(map(abs, ours[n])) + 1) / (statistics.median(map(abs, theirs[n])) + 1)
        for n in ours
    }
    within2 = sum(0.5 <= r <= 2 for r in ratio.values())
    within10 = sum(0.1 <= r <= 10 for r in ratio.values())
    same_kind = sum((_summary(ours[n])["whole"] == 1) == (_summary(theirs[n])["whole"] == 1) for n in ours)
    print(f"\n## P2: our instances vs GSM_p2.jsonl ({time.perf_counter() - start:.0f} s)\n")
    print(
        f"{len(ours)} templates; {per_template} of our instances and {len(released[0])} released ones each."
    )
    if unchecked:
        print(f"Answers of {', '.join(unchecked)} taken from the solution's #### line (#answer disagrees).")
    if missed:
        print(
            "Seeds without an instance within the try budget: "
            + ", ".join(f"{k} {v}" for k, v in missed.items())
        )
    print("\n| | ours | released |\n|---|---|---|")
    print(f"| whole-number answers | {a['whole']:.1%} | {b['whole']:.1%} |")
    print(f"| negative answers | {a['negative']:.1%} | {b['negative']:.1%} |")
    print(f"| median abs(answer) | {a['median_abs']:g} | {b['median_abs']:g} |")
    print(
        f"| median question length (words) | {statistics.median(words['ours']):g} | "
        f"{statistics.median(words['released']):g} |"
    )
    print(
        f"\nPer template: median magnitude within 2x of the release in {within2}/{len(ours)}, within 10x in "
        f"{within10}/{len(ours)}; all-whole-number answers agree (both or neither) in {same_kind}/{len(ours)}."
    )
    far = sorted(ratio.items(), key=lambda kv: -abs(math.log(kv[1])))[:5]
    print("Furthest apart (ours / released median+1): " + ", ".join(f"p2/{n:04d} {r:.2f}" for n, r in far))


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=here.parent / "shared" / "data" / "gsm-symbolic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tries", type=int, default=DEFAULT_TRIES)
    p.add_argument("--p2-instances", type=int, default=20, help="our instances per P2 template")
    p.add_argument("--json", type=Path, help="also write the failure list here")
    args = p.parse_args()
    if not (args.data / "templates").is_dir():
        raise SystemExit(f"{args.data}: no templates/ folder (pass --data)")
    templates, details = instantiation_rate(args.data, args.seed, args.max_tries)
    if (args.data / "GSM_p2.jsonl").is_file():
        p2_comparison(args.data, templates, args.p2_instances, args.max_tries)
    if args.json:
        args.json.write_text(json.dumps({"failures": details}, indent=2) + "\n")


if __name__ == "__main__":
    main()
