"""What went wrong in a template, said in the template's terms rather than Jinja's.

Jinja reports a misspelt variable as `'dict object' has no attribute 'frist_name'`: neither the
expression written nor what was meant. The expression is found again on the template's line, and
the closest name the context holds at that place is suggested: "`customer.frist_name` is not
defined; did you mean `customer.first_name`?".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError, UndefinedError

CONTEXT_HINT = "see docs/templates.md for every variable a template can use"
_UNDEFINED = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'(?P<owner>[^']*)' has no attribute '(?P<name>[^']+)'$")
_NAME = r"[A-Za-z_]\w*"


def _names(value: Any, depth: int = 0) -> Iterator[str]:
    """Every key reachable in a context (two levels deep)."""
    if depth > 2:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _names(item, depth + 1)
    elif isinstance(value, list) and value:
        yield from _names(value[0], depth + 1)


def _written(name: str, source: str | None) -> str | None:
    """The expression before `.name` (or `['name']`) as the template writes it, e.g. `customer`."""
    if not source:
        return None
    quoted = re.escape(name)
    match = re.search(rf"(?<![\w.])({_NAME}(?:\.{_NAME})*)(?:\.{quoted}\b|\[\s*['\"]{quoted}['\"]\s*\])", source)
    return match.group(1) if match else None


def _lookup(context: Mapping[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _closest(name: str, candidates: Any) -> str | None:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1)
    return close[0] if close and close[0] != name else None


def _undefined(exc: UndefinedError, context: Mapping[str, Any], source: str | None) -> tuple[str, str]:
    """A misspelt or missing variable: the expression written, the closest one the context has."""
    message = str(exc.message or "")
    if match := _UNDEFINED.match(message):
        name = match["name"]
        close = _closest(name, context)
        return (f"`{name}` is not defined" + (f"; did you mean `{close}`?" if close else ""),
                f"a template can use: {', '.join(sorted(context))}; {CONTEXT_HINT}")
    match = _NO_ATTRIBUTE.match(message)
    if not match:
        return f"a value used here is not defined ({message})", CONTEXT_HINT
    name, owner = match["name"], _written(match["name"], source)
    expression = f"{owner}.{name}" if owner else name
    if match["owner"] == "None":
        return (f"`{owner or 'a value'}` is empty here, so `{expression}` cannot be read",
                "`order` and `lines` exist only for order and replenishment triggers, `line` only for "
                f"replenishment; guard it with `{{% if {owner or 'order'} %}}`; {CONTEXT_HINT}")
    found = _lookup(context, owner) if owner else None
    if isinstance(found, Mapping):  # e.g. `customer`: suggest among its keys
        close = _closest(name, (str(k) for k in found))
        hint = f"`{owner}` has: {', '.join(sorted(str(k) for k in found))}; {CONTEXT_HINT}"
    else:  # a loop variable or a value the sample does not reach: any name the context holds
        close = _closest(name, _names(context))
        hint = (f"guard optional values with `{{% if {owner or 'x'}.{name} is defined %}}`; {CONTEXT_HINT}"
                if close is None else CONTEXT_HINT)
    suggestion = f"{owner}.{close}" if owner and close else close
    return f"`{expression}` is not defined" + (f"; did you mean `{suggestion}`?" if suggestion else ""), hint


def explain(exc: Exception, context: Mapping[str, Any], source: str | None = None) -> tuple[str, str | None]:
    """The one-line message and hint for an error raised while rendering; `source` is the text it happened
    in, where known: the message string, or the template's line followed by the whole template."""
    if isinstance(exc, UndefinedError):
        return _undefined(exc, context, source)
    if isinstance(exc, TemplateSyntaxError):
        return (f"template syntax error: {exc.message}",
                "check the tag or expression on this line: every {% if %}/{% for %}/{% block %} needs its end tag")
    if isinstance(exc, TemplateNotFound):
        return (f"template not found: {exc.name}",
                "templates are looked up in LIFECYCLE_TEMPLATES_DIR by name, e.g. 'base.html'")
    if isinstance(exc, TemplateError):
        return f"template error: {exc.message or type(exc).__name__}", CONTEXT_HINT
    return f"{type(exc).__name__}: {exc}", CONTEXT_HINT
