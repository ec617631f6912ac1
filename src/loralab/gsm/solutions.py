"""Fine-tuning targets derived exactly from a template: a natural-language CoT and reusable Python code.

- CoT: the template's own worked solution (`answer_annotated`), rendered for the instance, ending `#### N`.
- Code: one function per level of a problem family, computing the template's `#answer` from parameters
  named after its variables. A level's function calls the previous level's function when the previous
  `#answer` occurs inside its own (the easier problem's computation graph is part of the harder one's), so
  the functions of a family form one reusable module. `graph="level"` shows an instance the functions up
  to its own level; `graph="whole"` shows every level's function at every level, as the paper's generated
  code did ("the whole computation graph was used to generate reusable Python codes for questions of all
  difficulty levels", Appendix A.4) — that puts the harder levels' computation into the training data.

The paper had an LLM write its code; here it is generated from the expression tree, so it always runs and
always returns the template's answer.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from loralab.errors import LoralabError
from loralab.gsm.expr import functions, plain
from loralab.gsm.templates import LEVELS, Instance, Template
from loralab.gsm.vocab import VOCABULARIES

_CODE_CALLS = frozenset({"int", "float", "round", "abs", "min", "max", "sum", "len", "Fraction"})
GRAPHS = ("level", "whole")


def cot_solution(instance: Instance) -> str:
    """The natural-language solution: the template's worked solution for this instance, ending `#### N`."""
    return instance.solution


@dataclass(frozen=True)
class CodeFunction:
    """The function of one level: `name(params)` returns that level's `#answer`."""

    level: str
    name: str
    params: tuple[str, ...]
    source: str


def _answer_tree(template: Template) -> ast.expr:
    """`#answer` as an expression tree, with a `Worded` value's `v[1]` (its number) written as `v`."""

    class _Unwrap(ast.NodeTransformer):
        def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
            self.generic_visit(node)
            index = node.slice
            if isinstance(node.value, ast.Name) and isinstance(index, ast.Constant) and index.value == 1:
                return node.value
            return node

    tree = _Unwrap().visit(ast.parse(template.answer.source, mode="eval")).body
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Call) and not (isinstance(sub.func, ast.Name) and sub.func.id in _CODE_CALLS):
            raise LoralabError(
                f"{template.source}: cannot write code for #answer {template.answer.source!r}: "
                f"it calls {ast.unparse(sub.func)}()"
            )
    return tree


def _names(tree: ast.expr, order: Sequence[str]) -> tuple[str, ...]:
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    calls = {c.func.id for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
    return tuple(n for n in order if n in used - calls)


def family_functions(templates: Sequence[Template]) -> list[CodeFunction]:
    """One function per level of a family (templates in level order), each reusing the nearest easier
    level whose `#answer` appears, unchanged, inside its own."""
    out: list[CodeFunction] = []
    trees: list[tuple[CodeFunction, str]] = []
    for template in sorted(templates, key=lambda t: LEVELS.index(t.level)):
        tree = _answer_tree(template)
        params = _names(tree, template.variables)
        name = f"{template.family}_{template.level}"
        lines = []
        for prev, dump in reversed(trees):
            replaced = _replace(tree, dump, f"{prev.level}_answer")
            if replaced is not None:
                args = ", ".join(prev.params)
                lines.append(f"    {prev.level}_answer = {prev.name}({args})")
                tree = replaced
                break
        lines.append(f"    return {ast.unparse(tree)}")
        source = f"def {name}({', '.join(params)}):\n" + "\n".join(lines) + "\n"
        fn = CodeFunction(template.level, name, params, source)
        out.append(fn)
        trees.append((fn, ast.dump(_answer_tree(template))))
    return out


def _replace(tree: ast.expr, dump: str, name: str) -> ast.expr | None:
    """`tree` with every subtree equal to `dump` replaced by the variable `name` (None if there is none)."""
    found = False

    class _Swap(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            nonlocal found
            if isinstance(node, ast.expr) and ast.dump(node) == dump:
                found = True
                return ast.Name(id=name, ctx=ast.Load())
            return super().visit(node)

    copy = ast.parse(ast.unparse(tree), mode="eval").body
    new = _Swap().visit(copy)
    return new if found and isinstance(new, ast.expr) else None


def code_module(functions_: Sequence[CodeFunction], fractions: bool = False) -> str:
    """The functions as one Python module, importing `Fraction` when one of them (or, with `fractions`,
    the code that calls them) uses it."""
    body = "\n\n".join(f.source for f in functions_)
    header = "from fractions import Fraction\n\n\n" if fractions or "Fraction(" in body else ""
    return header + body


def _literal(value: Any) -> str:
    value = plain(value)
    if isinstance(value, Fraction):
        return f"Fraction({value.numerator}, {value.denominator})"
    return repr(value)


def code_solution(instance: Instance, family: Sequence[CodeFunction], graph: str = "level") -> str:
    """The code target of one instance: a ```python block (the family's functions, up to the instance's
    level or all of them, and a call with this instance's numbers), its ```output, and `#### N`."""
    if graph not in GRAPHS:
        raise LoralabError(f"graph {graph!r}: choose one of {', '.join(GRAPHS)}")
    level = instance.template.level
    shown = [f for f in family if graph == "whole" or LEVELS.index(f.level) <= LEVELS.index(level)]
    own = next((f for f in family if f.level == level), None)
    if own is None:
        raise LoralabError(f"{instance.template.source}: its family has no function for level {level}")
    args = ", ".join(f"{p}={_literal(instance.values[p])}" for p in own.params)
    output = str(answer_value(instance))
    return (
        f"```python\n{code_module(shown, 'Fraction(' in args)}\n\nprint({own.name}({args}))\n```\n"
        f"```output\n{output}\n```\n#### {instance.gold}"
    )


def answer_value(instance: Instance) -> Any:
    """`#answer` evaluated on the instance's values, as Python computes it (what the code prints)."""
    env: dict[str, Any] = {**VOCABULARIES, **instance.values}
    return plain(instance.template.answer(env, functions(random.Random(0))))


def computation_steps(template: Template) -> list[str]:
    """The arithmetic operations of `#answer`, innermost first: "a + b - c" -> ["a + b", "a + b - c"]."""
    steps: list[str] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            walk(child)
        if isinstance(node, ast.BinOp):
            steps.append(ast.unparse(node))

    walk(_answer_tree(template))
    return steps


def families(templates: Mapping[str, Sequence[Template]]) -> dict[str, list[CodeFunction]]:
    """The code functions of every family in a template set (templates grouped by level)."""
    by_family: dict[str, list[Template]] = {}
    for level in LEVELS:
        for t in templates.get(level, []):
            by_family.setdefault(t.family, []).append(t)
    return {family: family_functions(ts) for family, ts in by_family.items()}
