"""Pretraining of the built-in base: the per-step hook used for checkpoints (bench/base_trial.py) sees every
step in order and does not change the training it observes."""

from __future__ import annotations

from loralab.models.tiny import BASE_PRESETS, corpus_and_tokens, make_model, pretrain


def test_after_step_sees_every_step_and_leaves_training_unchanged() -> None:
    p = BASE_PRESETS["test"].model_copy(update={"steps": 6})
    _, tokenizer, ids = corpus_and_tokens(p)

    seen: list[tuple[int, float]] = []
    hooked = pretrain(
        make_model(p, tokenizer), ids, p, "t", after_step=lambda s, ls: seen.append((s, ls[-1]))
    )
    plain = pretrain(make_model(p, tokenizer), ids, p, "t")

    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss in seen] == hooked
    assert hooked == plain  # same seed, same windows: the hook only observes
