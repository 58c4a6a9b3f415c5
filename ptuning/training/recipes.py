"""Recipes: what an option left unset takes, per method and task family.

`RECIPES` are the methods' own: `ptuning` is the P-tuning guide's recipe (20 tokens, MLP 128, lr 1e-3,
batch 32, 20 epochs, weight decay 0.01), the others the recipes measured on GLUE in BENCHMARKS.md.
A task family adds its own on top, for the options it trains differently (its file's `RECIPES`:
NER and SQuAD need other batch sizes, learning rates and far fewer epochs than GLUE). What neither
sets is the config field's own default (`TrainConfig`, `MethodConfig`).
"""
from __future__ import annotations

import dataclasses

from ..options import specs

RECIPES = {
    "ptuning": dict(lr=1e-3, epochs=20, warmup_ratio=0.0, num_virtual_tokens=20, encoder_hidden_size=128,
                    reparam="mlp", head_token="cls"),
    "prompt": dict(lr=1e-2, epochs=20, warmup_ratio=0.06, num_virtual_tokens=20, reparam="none", head_token="cls"),
    "prefix": dict(lr=1e-2, epochs=20, warmup_ratio=0.06, num_virtual_tokens=20, prefix_projection=False,
                   prefix_dropout=0.0),
    "full": dict(lr=3e-5, epochs=10, warmup_ratio=0.06),
}


def recipe(family, method: str, classes=()) -> dict:
    """The recipe a run of `method` on a task of `family` (a tasks/ module) takes for unset options; with
    the option `classes`, only the options that such a run reads (--help lists these)."""
    chosen = {**RECIPES[method], **family.RECIPES.get(method, {})}
    read = {name: spec for cls in classes for name, (_, spec) in specs(cls).items()}
    return {name: value for name, value in chosen.items() if name not in read or (
        read[name].read_with(method, family.HEAD) and
        (read[name].heads is None or family.HEAD in read[name].heads))} if classes else chosen


def fill(values: dict, family, method: str, classes) -> None:
    """Set each unset (None) recipe option in `values` to the recipe's value, else its field's default.
    `--max-length` left unset takes the family's MAX_LENGTH where it has one (QA: 384-token windows), and
    `--template` the family's `default_template` (a cloze task's pattern with its [MASK])."""
    chosen = recipe(family, method)
    for cls in classes:
        for name, (f, spec) in specs(cls).items():
            if spec.recipe and values.get(name) is None:
                values[name] = chosen.get(name, f.default)
    if values.get("max_length") is None:
        values["max_length"] = getattr(family, "MAX_LENGTH", None)
    if values.get("template") is None and hasattr(family, "default_template"):  # cloze: the task's pattern
        values["template"] = family.default_template(values)


def describe(families, classes) -> str:
    """Every family's recipe per method, for --help: `family / method: lr 0.01, epochs 20, ...`."""
    lines = ["recipes (what options left unset take), by task family and method:"]
    for family in families:
        for method in RECIPES:
            values = ", ".join(f"{name.replace('_', '-')} {value}"
                               for name, value in recipe(family, method, classes).items())
            lines.append(f"  {family.__name__.rsplit('.', 1)[-1]} ({', '.join(family.TASKS)}) / {method}: {values}")
    return "\n".join(lines)


def option_help(name: str, families, classes) -> str:
    """What an unset recipe option takes, for its --help line: per family, the methods that set it."""
    parts = []
    for family in families:
        values = [f"{method} {recipe(family, method, classes)[name]}" for method in RECIPES
                  if name in recipe(family, method, classes)]
        if values:
            parts.append(f"{family.__name__.rsplit('.', 1)[-1]}: {', '.join(values)}")
    default = next(f.default for cls in classes for f in dataclasses.fields(cls) if f.name == name)
    return "recipe: " + "; ".join(parts + [f"else {default}"])
