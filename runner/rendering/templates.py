"""Sandboxed Jinja templates: rendering a campaign's message, and checking its templates.

Templates live in one folder: a message's `template: thank_you` renders `thank_you.html` and,
when it exists, `thank_you.txt` (otherwise the text part is derived from the HTML), or the
reader's language variant of them (`thank_you.fr.html`, see runner/i18n/templates.py). Subject,
preheader, From and Reply-To are Jinja strings from the campaign file. Every environment is an
immutable sandbox (templates cannot reach Python internals or change the shared context) and
uses StrictUndefined, so a misspelt variable is an error, never a blank. docs/templates.md
documents the context, the filters and the layout.
"""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..campaigns import Campaign, MessageSpec
from ..errors import LifecycleError, Problem
from ..i18n.filters import FILTERS
from ..i18n.locales import DEFAULT_LOCALE, parse_locale
from ..i18n.templates import language_variants, split_language, variant_for
from .errors import explain
from .text import html_to_text

# The campaign-file keys of the message's Jinja strings, in the order they are checked.
_STRING_KEYS = (("subject", "subject"), ("preheader", "preheader"), ("from", "from_"), ("reply_to", "reply_to"))


class RenderError(LifecycleError):
    """A message could not be rendered; `path` and `line` locate the cause when known."""

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None,
                 line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message, hint)
        self.path, self.line, self.detail = path, line, message


@dataclass(frozen=True)
class RenderedEmail:
    """One rendered message, before it becomes MIME."""

    subject: str
    preheader: str
    html: str
    text: str
    from_: str
    reply_to: str | None = None


# ---------------------------------------------------------------- locating errors

def _one_line(text: str) -> str:
    """Header-safe text: no line breaks, runs of whitespace collapsed."""
    return " ".join(text.split())


# ---------------------------------------------------------------- the sandbox

# What `a.b` finds as an attribute of a plain dict before it looks for the key b (its methods and
# the attributes every object has).
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with two shortcuts that change nothing it allows or renders.

    - `a.b` on a plain dict (every part of a context but its amounts and dates is one) is the key b
      when b is not one of the dict's own attributes. The sandbox would first ask for the
      attribute, fail with an exception, then return the item unchecked, as here; attributes (and
      everything that is not a plain dict) still go through its checks.
    - A template's globals are a plain dict, not a ChainMap over the environment's: Jinja copies them
      into every render's context, which iterates a ChainMap in Python. The environment's globals
      are set before any template is loaded and never change.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


# ---------------------------------------------------------------- the renderer

class Renderer:
    """Renders messages from one templates folder, compiling each template (and string) once."""

    def __init__(self, templates_dir: Path, locale: str = DEFAULT_LOCALE) -> None:
        self.templates_dir = Path(templates_dir)
        self.locale = locale
        self.files = _Sandbox(
            loader=FileSystemLoader(self.templates_dir),
            autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Jinja keeps each compiled template and only re-reads a file whose mtime changed, so a
            # tick compiles every template once and a running daemon still sees edited templates.
            auto_reload=True,
            cache_size=1000,
        )
        self.strings = _Sandbox(autoescape=False, undefined=StrictUndefined)
        for env in (self.files, self.strings):
            env.filters.update(FILTERS)
            # The shop's locale, for where a render's own `locale` does not reach: a macro imported
            # without context formats its dates in it.
            env.globals["locale"] = locale
        self._strings: dict[str, Template] = {}  # Jinja does not cache from_string()
        self._variants: dict[tuple[str, str], str] | None = None  # language variants found while pinned
        self._pinned: dict[str, Template | None] = {}  # templates (None: absent) looked up while pinned

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Render a batch against the templates as they are when it starts.

        Outside it, every render checks each template file it uses (the template, its layout, its
        macros, its language variants) for edits; inside it, that happens once, on entry, so a batch
        of emails does not stat the same files for every email. A template edited meanwhile is used
        from the next batch on.
        """
        if self._variants is not None:
            yield
            return
        if any(not template.is_up_to_date for template in list(self.files.cache.values())):
            self.files.cache.clear()
        self._variants, self.files.auto_reload = {}, False
        try:
            yield
        finally:
            self._variants, self.files.auto_reload = None, True
            self._pinned.clear()

    def _variant(self, template: str, locale: str) -> str:
        if self._variants is None:
            return variant_for(self.templates_dir, template, locale)
        key = (template, locale)
        found = self._variants.get(key)
        if found is None:
            found = self._variants[key] = variant_for(self.templates_dir, template, locale)
        return found

    # -- lookup

    def template_path(self, name: str) -> Path:
        """Where the template called `name` (with extension) lives."""
        return self.templates_dir / name

    def available(self) -> list[str]:
        """Names usable as `template:` in a campaign: every .html file except base, `_partials` and
        language variants (`winback.fr`)."""
        if not self.templates_dir.is_dir():
            return []
        names = []
        for path in self.templates_dir.rglob("*.html"):
            name = path.relative_to(self.templates_dir).with_suffix("").as_posix()
            if name != "base" and not path.name.startswith("_") and split_language(name)[1] is None:
                names.append(name)
        return sorted(names)

    def _template(self, name: str, *, optional: bool = False) -> Template | None:
        """The compiled template `name` (cached); None when optional and absent. Raises Jinja errors."""
        if self._variants is not None and name in self._pinned:
            pinned = self._pinned[name]
            if pinned is not None or optional:
                return pinned
        try:
            found: Template | None = self.files.get_template(name)
        except TemplateNotFound as exc:
            if not (optional and exc.name == name):
                raise
            found = None
        if self._variants is not None:
            self._pinned[name] = found
        return found

    def _string(self, source: str) -> Template:
        template = self._strings.get(source)
        if template is None:
            template = self._strings[source] = self.strings.from_string(source)
        return template

    def _where(self, exc: BaseException, fallback: str | None) -> tuple[str | None, int | None]:
        """The template file and line an error happened at, from Jinja's rewritten traceback."""
        if isinstance(exc, TemplateSyntaxError) and exc.filename:
            return self._display(exc.filename), exc.lineno
        root = self.templates_dir.resolve()
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.startswith("<"):  # compiled strings, not files
                continue
            try:
                Path(frame.filename).resolve().relative_to(root)
            except (ValueError, OSError):
                continue
            return self._display(frame.filename), frame.lineno
        return fallback, None

    def _display(self, filename: str) -> str:
        """A template file as a user would name it: relative to the configured folder."""
        try:
            relative = Path(filename).resolve().relative_to(self.templates_dir.resolve())
        except (ValueError, OSError):
            return filename
        return str(self.templates_dir / relative)

    # -- rendering

    def render_string(self, source: str, context: Mapping[str, Any], *, what: str = "string") -> str:
        """One of the message's Jinja strings (subject, preheader, from), on a single line."""
        if "{" not in source:  # no Jinja in it (a fixed From, say): it renders as itself
            return _one_line(source)
        try:
            return _one_line(self._string(source).render(context))
        except Exception as exc:  # any failure inside a template is the template's
            message, hint = explain(exc, context, source)
            raise RenderError(f"message {what} {source!r}: {message}", hint) from exc

    def _render_file(self, name: str, context: Mapping[str, Any], *, optional: bool = False) -> str | None:
        try:
            template = self._template(name, optional=optional)
            return None if template is None else template.render(context)
        except TemplateNotFound as exc:
            fallback = str(self.template_path(name))
            path, line = self._where(exc, fallback)
            if exc.name == name:
                path, line = fallback, None
            raise RenderError(explain(exc, context)[0], self._missing_hint(exc.name or name), path=path,
                              line=line) from exc
        except Exception as exc:  # any failure inside a template is the template's
            path, line = self._where(exc, str(self.template_path(name)))
            message, hint = explain(exc, context, _source(path, line))
            raise RenderError(message, hint, path=path, line=line) from exc

    def render(self, message: MessageSpec, context: Mapping[str, Any], *, default_from: str) -> RenderedEmail:
        """Render a message for one context; raises RenderError naming the template file and line."""
        subject = self.render_string(message.subject, context, what="subject")
        preheader = self.render_string(message.preheader, context, what="preheader") if message.preheader else ""
        from_ = self.render_string(message.from_ or default_from, context, what="from")
        reply_to = self.render_string(message.reply_to, context, what="reply_to") if message.reply_to else ""
        page = {**context, "subject": subject, "preheader": preheader}
        name = self._variant(message.template, context.get("locale") or self.locale)
        html = self._render_file(f"{name}.html", page) or ""
        text = self._render_file(f"{name}.txt", page, optional=True)
        return RenderedEmail(subject=subject, preheader=preheader, html=html,
                             text=tidy_text(text) if text is not None else html_to_text(html),
                             from_=from_, reply_to=reply_to or None)

    # -- validation

    def _missing_hint(self, name: str) -> str:
        stem = name.removesuffix(".html")
        available = self.available()
        close = difflib.get_close_matches(stem, available, n=1)
        listed = ", ".join(available) if available else f"none yet in {self.templates_dir}"
        return (f"did you mean {close[0]!r}? " if close else "") + f"available templates: {listed}"

    def check(self, campaign: Campaign, context: Mapping[str, Any], *, default_from: str,
              variant: str | None = None, step: int | None = None) -> list[Problem]:
        """Every problem with a campaign's message (as `variant` or journey `step` changes it): missing or
        broken templates, undefined variables."""
        message = campaign.message_for(variant, step)
        keys = campaign.message_keys(variant, step)
        problems: list[Problem] = []
        rendered: dict[str, str] = {}
        for key, attribute in _STRING_KEYS:
            source = getattr(message, attribute) or (default_from if key == "from" else "")
            if not source:
                continue
            try:
                rendered[key] = _one_line(self._string(source).render(context))
            except Exception as exc:  # report whatever the string does wrong
                name, line = keys.get(key, (f"message.{key}", None))
                said, hint = explain(exc, context, source)
                problems.append(Problem(str(campaign.path), line if getattr(message, attribute) else None,
                                        f"{name}: {said}", hint))
        page = {**context, "subject": rendered.get("subject", message.subject),
                "preheader": rendered.get("preheader", message.preheader)}
        html_name = f"{message.template}.html"
        if not self.template_path(html_name).is_file():
            problems.append(Problem(str(campaign.path), keys.get("template", ("", None))[1],
                                    f"template {message.template!r} not found: no {self.template_path(html_name)}",
                                    self._missing_hint(html_name)))
        else:
            problems.extend(self._check_file(html_name, page))
        text_name = f"{message.template}.txt"
        if self.template_path(text_name).is_file():
            problems.extend(self._check_file(text_name, page))
        return problems + self._check_variants(message.template, page)

    def _check_variants(self, template: str, page: Mapping[str, Any]) -> list[Problem]:
        """Each language variant of a template, rendered in its own locale; misspelt or orphaned ones."""
        problems: list[Problem] = []
        for tag, suffixes in language_variants(self.templates_dir, template).items():
            stem, spelt = f"{template}.{tag}", parse_locale(tag)
            if spelt != tag:
                for suffix in sorted(suffixes):
                    problems.append(Problem(str(self.template_path(stem + suffix)), None,
                                            f"language {tag!r} is never chosen: locales are spelt {spelt!r}",
                                            f"rename it to {template}.{spelt}{suffix}"))
                continue
            if ".html" not in suffixes:
                problems.append(Problem(str(self.template_path(f"{stem}.txt")), None,
                                        f"no {stem}.html beside it, so it is never used",
                                        f"add {self.template_path(stem + '.html')} or remove this file"))
                continue
            for suffix in sorted(suffixes):
                problems.extend(self._check_file(stem + suffix, {**page, "locale": tag}))
        return problems

    def _check_file(self, name: str, context: Mapping[str, Any]) -> list[Problem]:
        try:
            self._render_file(name, context)
        except RenderError as exc:
            return [Problem(exc.path or str(self.template_path(name)), exc.line, exc.detail, exc.hint)]
        return []


def _source(path: str | None, line: int | None) -> str | None:
    """The template file at `path`, line `line` first, to find the expression an error is about: on its
    line, or where the value was set (`{% set m = occurrence.milestone %}`) when the line uses it."""
    if not path or not line:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.splitlines()
    return (lines[line - 1] + "\n" if 0 < line <= len(lines) else "") + text


def tidy_text(text: str) -> str:
    """A rendered .txt template without trailing spaces or runs of more than one blank line."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept) + "\n"


# ---------------------------------------------------------------- MIME

