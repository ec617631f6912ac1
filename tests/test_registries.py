"""The DATASETS and EVALUATORS registries, and the one `Evaluation` type they lead to."""

from __future__ import annotations

import typing

import pytest

from loralab.evaluation import Evaluation
from loralab.evaluation.evaluators import EVALUATORS, Evaluator
from loralab.evaluation.evaluators import register as register_evaluator
from loralab.experiments.datasets import DATASETS
from loralab.experiments.datasets import register as register_dataset
from loralab.gsm.evaluate import GSM_EVALUATOR_VERSION


def test_every_dataset_kind_is_the_spec_kind_it_is_filed_under() -> None:
    assert list(DATASETS) == ["twohop", "setup", "graph", "gsm"]
    for name, kind in DATASETS.items():
        assert typing.get_args(kind.spec.model_fields["kind"].annotation) == (name,)
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset(DATASETS["graph"])


def test_dataset_labels_and_held_out_tasks() -> None:
    twohop = DATASETS["twohop"].spec(kind="twohop", triplets=20, templates=12)
    graph = DATASETS["graph"].spec(kind="graph", variant="disjoint", paths=7)
    assert DATASETS["twohop"].label(twohop, 3) == "twohop-RR-spouse_born_in-n20-t12-s3"
    assert DATASETS["graph"].label(graph, 0) == "graph-disjoint-p7-t50-s0"
    assert (DATASETS["setup"].held_out(True), DATASETS["twohop"].held_out(False)) == ("ac_cot", "ac")
    assert len(DATASETS["twohop"].files(twohop)) == 4 * 3  # ab, bc, ac, ac_cot x train, dev, test
    gsm = DATASETS["gsm"].spec(kind="gsm", format="code-whole", train_per_template=5)
    assert DATASETS["gsm"].label(gsm, 1) == "gsm-own-code-whole-t5-p2-s1"
    assert DATASETS["gsm"].held_out(True) == DATASETS["gsm"].held_out(False) == "p2"
    # symbolic and p1 x train, test; p2 test
    assert DATASETS["gsm"].files(gsm) == {
        "symbolic.train.jsonl",
        "symbolic.test.jsonl",
        "p1.train.jsonl",
        "p1.test.jsonl",
        "p2.test.jsonl",
    }
    assert (DATASETS["gsm"].evaluator, DATASETS["twohop"].evaluator) == ("gsm", "twohop")


def test_evaluators_and_their_versions() -> None:
    assert list(EVALUATORS) == ["twohop", "gsm"]
    assert EVALUATORS["twohop"].version == "eval-1"  # in every stored two-hop cell's key
    assert EVALUATORS["gsm"].version == GSM_EVALUATOR_VERSION
    with pytest.raises(ValueError, match="registered twice"):
        register_evaluator(Evaluator("gsm", "again", "x", EVALUATORS["gsm"].evaluate))


def test_evaluation_counts_its_rows_not_the_extra_ones() -> None:
    result = Evaluation(
        [{"correct": True}, {"correct": False}, {"correct": 1}],
        extra=[{"correct": True}] * 5,
        details=[{"status": "no answer"}, {"status": "graded"}, {"status": "no answer"}],
    )
    assert (result.n, result.correct, result.accuracy, result.count("no answer")) == (3, 2, 2 / 3, 2)
    # Wilson 95% for 2 of 3, by hand: centre (2 + z^2/2) / (3 + z^2) = 0.5731, half-width 0.3654
    assert result.ci == pytest.approx((0.2077, 0.9385), abs=1e-4)
    assert Evaluation([]).accuracy == 0.0 and Evaluation([]).ci == (0.0, 0.0)


def test_train_flags_default_to_expert_config() -> None:
    """`loralab train`'s LoRA flags and ExpertConfig cannot disagree on a default."""
    import typer.main

    from loralab.cli import app
    from loralab.experts.config import ExpertConfig

    cmd = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in cmd.params}
    fields = ExpertConfig.model_fields
    shared = ("r", "alpha", "dropout", "targets", "lr", "epochs", "batch_size", "seed")
    assert {k: defaults[k] for k in shared} == {k: fields[k].default for k in shared}
