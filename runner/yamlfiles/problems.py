"""Validation errors of a YAML file's models as `file:line: message (hint: ...)` problems a marketer reads.

pydantic's own wording (`Input should be 'placed' or 'delivered'`, `Input should be less than or equal
to 23`) names neither the value given nor what to write instead; each kind of error a campaign or
policy file can meet is said here in the file's terms: the closest allowed value, the allowed range,
the value found.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..durations import HINT as DURATION_HINT
from ..errors import Problem

CRON_HINT = "five fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'"

#: what the patterns of the models' text fields allow, in words
PATTERNS = {
    r"^[a-z0-9][a-z0-9_-]*$": "lowercase letters, digits, '-' and '_', starting with a letter or digit",
    r"^[A-Za-z0-9_./-]+$": "letters, digits and the characters . _ / -",
}
_KINDS = {  # pydantic error type: what the value must be
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text (put it in quotes)", "list_type": "a list", "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys",
}


def plain(node: Any) -> Any:
    """A YAML tree as plain dicts and lists (with string keys), for validation."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node along a pydantic error location."""
    line = None
    for part in loc:
        if isinstance(node, CommentedMap):
            key = "in" if part == "in_" else ("from" if part == "from_" else part)
            if key in node:
                line = node.lc.key(key)[0] + 1
                node = node[key]
                continue
            if line is None:
                line = node.lc.line + 1
            break
        if isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
            continue
        break
    return line


def did_you_mean(value: Any, valid: list[str], what: str) -> str:
    """A hint naming the closest of `valid` to `value`, if any is close, and every one of them."""
    close = difflib.get_close_matches(str(value), valid, n=1)
    return (f"did you mean {close[0]!r}? " if close else "") + f"{what}: {', '.join(valid)}"


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last part of `loc` (for suggesting valid keys)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model


def _bounds(root: type[BaseModel], loc: tuple[Any, ...]) -> dict[str, Any]:
    """The numeric bounds (ge, gt, le, lt) declared on the field at `loc`, or on its items for a list item."""
    named = loc
    while named and isinstance(named[-1], int):
        named = named[:-1]
    model = _model_at(root, named) if named else None
    field = model.model_fields.get(str(named[-1])) if model is not None else None
    if field is None:
        return {}
    metadata = list(field.metadata)
    if named != loc:  # an item: its constraints sit in list[Annotated[int, Field(ge=1)]]
        metadata = [m for arg in get_args(field.annotation) for info in get_args(arg)[1:]
                    if isinstance(info, FieldInfo) for m in info.metadata]
    return {key: getattr(m, key) for m in metadata for key in ("ge", "gt", "le", "lt") if hasattr(m, key)}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _number(value) if isinstance(value, int | float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(bounds: dict[str, Any]) -> str:
    """`between 0 and 23`, `at least 1`, `more than 0 and at most 100`..."""
    if "ge" in bounds and "le" in bounds:
        return f"between {_number(bounds['ge'])} and {_number(bounds['le'])}"
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    return " and ".join(f"{words[key]} {_number(bounds[key])}" for key in ("ge", "gt", "le", "lt") if key in bounds)


def _allowed(expected: str) -> list[str]:
    """The values of a pydantic literal error's `expected`: "'placed' or 'delivered'"."""
    return re.findall(r"'((?:[^'\\]|\\.)*)'", expected)


def _explain(error: Any, where: str, root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, str | None]:
    """The message and hint for one pydantic error at `where` (a dotted location)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(root, loc)
        valid = sorted((f.alias or name) for name, f in model.model_fields.items()) if model else []
        return f"unknown key {str(loc[-1])!r}", did_you_mean(loc[-1], valid, "valid keys here") if valid else None
    if kind == "missing":
        return f"{where} is required", f"add `{loc[-1]}:` here"
    if kind == "literal_error":
        allowed = _allowed(str(ctx.get("expected", "")))
        return f"{where}: unknown value {_shown(value)}", did_you_mean(value, allowed, "valid values")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = {**_bounds(root, loc), **{k: ctx[k] for k in ("ge", "gt", "le", "lt") if k in ctx}}
        return f"{where} must be {_range(bounds)}, got {_shown(value)}", None
    if kind in _KINDS:
        kinds = dict.fromkeys(_KINDS[k] for k in error.get("kinds", [kind]))
        return f"{where} must be {' or '.join(kinds)}, got {_shown(value)}", None
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        allowed = PATTERNS.get(pattern, f"text matching {pattern}")
        return f"{where}: {_shown(value)} may contain only {allowed}", None
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{where} must not be empty", None
    if kind in ("too_short", "string_too_short"):
        return f"{where} needs at least {ctx.get('min_length')} {'character' if 'string' in kind else 'item'}(s)", None
    if kind in ("too_long", "string_too_long"):
        return f"{where} allows at most {ctx.get('max_length')} {'character' if 'string' in kind else 'item'}(s)", None
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = DURATION_HINT if "duration" in message else CRON_HINT if "cron" in message else None
    return f"{where}: {message}", hint


def _model_names(cls: type[BaseModel] = BaseModel) -> set[str]:
    return {name for sub in cls.__subclasses__() for name in (sub.__name__, *_model_names(sub))}


def _union_tag(part: Any) -> bool:
    """Whether a location part names a member of a union (`str`, `list[str]`, `FrequencyCap`), not a key."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part
                                      or (part[:1].isupper() and part in _model_names()))


def _errors(exc: ValidationError) -> list[tuple[tuple[Any, ...], Any]]:
    """Each error with its location in the file's keys. A value no member of a union accepts gives an
    error per member: one "must be A or B" stands for them, and a member that got further (a list whose
    item is wrong) speaks alone."""
    found: list[tuple[tuple[Any, ...], Any, bool]] = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # the key an unknown-key error is about is the file's, whatever it is called
        keys = tuple(p for n, p in enumerate(loc)
                     if not _union_tag(p) or (error["type"] == "extra_forbidden" and n == len(loc) - 1))
        found.append((keys, error, keys != loc))
    deeper = {keys[:n] for keys, _, tagged in found if tagged for n in range(len(keys))}
    merged: dict[tuple[Any, ...], Any] = {}
    for keys, error, tagged in found:
        if tagged and keys in deeper:
            continue
        earlier = merged.get(keys)
        if earlier is not None and tagged and earlier["type"] in _KINDS and error["type"] in _KINDS:
            kinds = earlier.get("kinds", [earlier["type"]])
            merged[keys] = {**earlier, "kinds": [*kinds, error["type"]]}
            continue
        merged.setdefault(keys, error)
    return list(merged.items())


def validation_problems(path: Any, doc: Any, exc: ValidationError, model: type[BaseModel],
                        prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Each error of validating `doc` (read from `path`) against `model`, located at its line."""
    problems = []
    for loc, error in _errors(exc):
        full = prefix + loc
        where = ".".join(str(p) for p in full) or "(file)"
        message, hint = _explain(error, where, model, loc)
        problems.append(Problem(str(path), line_of(doc, full), message, hint))
    return problems
