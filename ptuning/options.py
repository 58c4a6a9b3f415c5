"""Options declared once: a dataclass field holds an option's default, help, checks and who reads it.

    @dataclass(frozen=True)
    class Options:                                      # tasks/qa.py
        doc_stride: int = option(128, "context tokens shared by consecutive windows", checks=[at_least(0)])
        null_threshold: float = option(0.0, "decline when the null score beats the best span by more",
                                       tasks=("squad_v2",), why="only SQuAD v2.0 questions may have no answer")

The command line is derived from such fields (`add_group`: `--doc-stride`, its type, choices, default
and help), as litgpt derives its CLI from dataclass fields; `problems` checks values against the
fields' own checks, and `not_read` names each given flag that the chosen task or method does not
read, so that no hand-kept list of options can drift from the declarations.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from .errors import OptionError, finite_float

Check = tuple[Callable[[object], bool], str]  # (holds for good values, message: {flag} and {value} filled in)


@dataclass(frozen=True)
class Spec:
    """How a dataclass field appears on the command line (`option` builds it)."""
    help: str
    checks: tuple[Check, ...] = ()
    choices: tuple | None = None
    heads: tuple[str, ...] | None = None    # the task families (by their HEAD) that read it; None: every one
    tasks: tuple[str, ...] | None = None    # the tasks that read it; None: every task of those families
    why: str | None = None                  # why other tasks do not (said when one is refused)
    methods: tuple[str, ...] | dict | None = None  # the methods that read it; None: every method; a dict:
                                            # per family HEAD (--template: v1 on a classifier, any on a cloze task)
    needs: str | None = None                # another option that must be set (true) for it to mean anything
    recipe: bool = False                    # unset: the recipe's value (tasks' RECIPES, training/recipes.py)
    negatable: bool = False                 # --x and --no-x
    hidden: bool = False                    # not in --help (a testing aid)
    cli: bool = True                        # False: a field of the config that no flag sets
    group: str | None = None                # which --help section, where a class spans several
    kind: Callable | None = None            # argparse's type (default: from the field's type)
    metavar: str | None = None

    def read_with(self, method: str, head: str) -> bool:
        """Whether a run of `method` on a family with HEAD `head` reads it (as far as methods go)."""
        methods = self.methods.get(head, ()) if isinstance(self.methods, dict) else self.methods
        return methods is None or method in methods


def option(default, help: str = "", *, checks=(), **spec) -> dataclasses.Field:
    """A dataclass field that is also a command-line option (see `Spec` for the keywords)."""
    return field(default=default, metadata={"option": Spec(help, tuple(checks), **spec)})


class Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, `prog: error: message`, as every other error of ours
    (argparse prints its whole usage first: 25 lines before the message), status 2 as argparse's."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --- checks: (predicate, message) --------------------------------------------------------------------

def at_least(low) -> Check:
    return (lambda v: v >= low), f"{{flag}} must be at least {low}"


def positive() -> Check:
    return (lambda v: v > 0), "{flag} must be positive"


def not_negative() -> Check:
    return (lambda v: v >= 0), "{flag} must not be negative"


def between(low, high, message: str | None = None) -> Check:
    return (lambda v: low <= v <= high), message or f"{{flag}} must be between {low} and {high}"


MAX_SIZE = 1 << 16  # widths, prompt lengths, batch sizes: beyond this a typo's extra zeros, not a run


def sane_size() -> Check:
    """Refused before any memory is asked for."""
    return (lambda v: v <= MAX_SIZE), f"{{flag}} {{value}} is absurd (at most {MAX_SIZE})"


# --- the fields of a dataclass as options --------------------------------------------------------------

def specs(cls) -> dict[str, tuple[dataclasses.Field, Spec]]:
    """{name: (field, spec)} of the dataclass's fields that are options."""
    return {f.name: (f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata}


def _kind(f: dataclasses.Field):
    kind = str(f.type).replace(" | None", "").replace("None | ", "")
    return {"int": int, "float": finite_float}.get(kind, str)


def add_fields(group, cls, recipe_help: Callable[[str], str] | None = None, section: str | None = None,
               names: tuple[str, ...] | None = None):
    """One flag per option field of `cls` (those of --help section `section`, or those `names`, where given)
    in the argparse group. A recipe field's flag defaults to None (left unset, the recipe decides:
    `recipe_help(name)` says what it is); every other flag to the field's default."""
    for name, (f, spec) in specs(cls).items():
        if not spec.cli or (section is not None and spec.group != section) or (names is not None and name not in names):
            continue
        default = None if spec.recipe else f.default
        if spec.hidden:
            text = argparse.SUPPRESS
        elif spec.recipe:
            text = f"{spec.help} ({recipe_help(name) if recipe_help else 'recipe'})"
        elif f.type == "bool" or default is None:
            text = spec.help
        else:
            text = f"{spec.help} (default: {default})"
        if f.type == "bool" and not spec.negatable:
            group.add_argument(flag(name), action="store_true", help=text)
        elif f.type in ("bool", "bool | None"):
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, default=default, help=text)
        else:
            group.add_argument(flag(name), type=spec.kind or _kind(f), default=default, choices=spec.choices,
                               metavar=spec.metavar, help=text)
    return group


def given_options(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The options the user gave on the command line (parsed again without defaults)."""
    saved = {action: action.default for action in parser._actions}
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    try:
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved.items():
            action.default = default


def problems(cls, values: dict) -> list[str]:
    """What is wrong with `values` (name -> value) by the checks of `cls`'s option fields; None is unset
    and passes. A class may add checks across its fields as `extra_problems(values) -> list[str]`."""
    found = []
    for name, (_, spec) in specs(cls).items():
        value = values.get(name)
        if value is None or isinstance(value, bool):
            continue
        for holds, message in spec.checks:
            if not holds(value):
                found.append(message.format(flag=flag(name), value=value))
                break
    extra = getattr(cls, "extra_problems", None)
    return found + (extra(values) if extra else [])


def check(instance) -> None:
    """For a config's __post_init__: raise OptionError naming every bad field (by its flag)."""
    found = problems(type(instance), {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)})
    if found:
        raise OptionError("; ".join(found))


def not_read(owners, given: set[str], *, family, task: str, method: str, families, values: dict) -> list[str]:
    """A problem for each given option that the task (of task family `family`) or the method does not
    read, or that needs another option (`values`: every option's value) to mean anything. `owners`:
    (options class, the one family whose own options they are, or None: every family's); a field's
    `heads` narrows that to the families (of `families`) with those HEADs."""
    found = []
    for cls, owner in owners:
        for name, (_, spec) in specs(cls).items():
            if name not in given:
                continue
            readers = [owner] if owner is not None else None
            if spec.heads is not None:
                readers = [f for f in families if f.HEAD in spec.heads]
            if not spec.read_with(method, family.HEAD):  # the task's fault when the method reads it elsewhere
                found.append(f"{flag(name)} has no meaning with --task {task} (--method {method} reads it for other "
                             "tasks)" if any(spec.read_with(method, f.HEAD) for f in families) else
                             f"{flag(name)} has no meaning with --method {method}")
            elif readers is not None and family not in readers:
                found.append(f"{flag(name)} has no meaning with --task {task}; it is for "
                             f"{' and '.join(reader.DESCRIPTION for reader in readers)}")
            elif spec.tasks is not None and task not in spec.tasks:
                found.append(f"{flag(name)} has no meaning with --task {task}: {spec.why} "
                             f"({', '.join('--task ' + t for t in spec.tasks)})")
            elif spec.needs is not None and not values.get(spec.needs):
                found.append(f"{flag(name)} has no meaning without {flag(spec.needs)}")
    return found


def values_for(cls, values: dict) -> dict:
    """The entries of `values` that are `cls`'s fields and set (not None): keyword arguments for `cls`."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names and v is not None}
