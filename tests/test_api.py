"""The public API (issue 20, item 5): every name of `loralab.__all__` stays what it is after any import, and
the README's Python example runs twice in one process."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import loralab
from tests.conftest import make_lora_folder

README = Path(__file__).parents[1] / "README.md"


def _public() -> dict[str, object]:
    return {name: getattr(loralab, name) for name in loralab.__all__}


def test_every_public_name_survives_importing_every_module() -> None:
    first = _public()
    assert callable(first["combine"]) and callable(first["evaluate"])
    for info in pkgutil.walk_packages(loralab.__path__, "loralab."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (ray, gguf) missing: the module is simply not used
            assert exc.name is not None and not exc.name.startswith("loralab"), exc
    again = _public()
    for name, obj in first.items():
        assert again[name] is obj, f"loralab.{name} changed after importing the subpackages"
        assert getattr(loralab, name) is obj
    for name in ("combine", "evaluate"):
        assert not isinstance(getattr(loralab, name), types.ModuleType) and callable(getattr(loralab, name))
    # the subpackages live under other names, so importing them cannot shadow the functions
    assert importlib.import_module("loralab.combination").combine is loralab.combine
    assert importlib.import_module("loralab.evaluation").evaluate is loralab.evaluate


def test_readme_python_example_runs_twice_in_one_process(
    tiny_base: Path, trained_expert: Path, tmp_path: Path
) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "the README has a Python example"
    from loralab.models.load import load_base

    other = make_lora_folder(
        tmp_path / "B-C", load_base(tiny_base)[0], ["gate_proj", "up_proj", "down_proj"], 4, seed=1
    )
    code = block.group(1).replace('"default"', repr(str(tiny_base)))  # the test base, not a 15-minute build
    code = code.replace('"lib/A-B"', repr(str(trained_expert))).replace('"lib/B-C"', repr(str(other)))
    assert str(tiny_base) in code and str(other) in code
    _, tokenizer = load_base(tiny_base)
    rows = [{"prompt": "Who is the spouse of Ann?", "gold": "Bob", "format": "direct"}]
    results = []
    for _ in range(2):
        scope: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), scope)  # the example as a user pastes it
        model = scope["model"]
        out = model.generate(**tokenizer("Hello", return_tensors="pt"), max_new_tokens=3, do_sample=False)
        assert out.shape[1] > 1
        results.append(loralab.evaluate(model, tokenizer, rows, max_new_tokens=4).rows[0]["output"])
    assert results[0] == results[1]  # same inputs, same greedy output: the second call is the same function


@pytest.mark.parametrize("name", ["combine", "evaluate", "load_expert", "train_expert", "load_base"])
def test_functions_are_not_modules(name: str) -> None:
    obj = getattr(loralab, name)
    assert callable(obj) and not isinstance(obj, types.ModuleType)
