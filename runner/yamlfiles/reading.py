"""Reading the YAML files of the campaigns folder: bounded in size, nesting and values, without aliases.

Every problem, from a syntax error to a hostile construct, is a Problem with the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, ScalarEvent
from ruamel.yaml.nodes import MappingNode
from ruamel.yaml.scanner import RoundTripScanner

from ..errors import Problem

# A campaign file is a few dozen YAML nodes in under 2 KB. The bounds below keep the cost of
# reading any file, however hostile, to a fraction of a second and a few MB: the YAML library
# reads about 4,000 nodes a second, and its composer recurses once per nesting level.
MAX_FILE_BYTES = 64 * 1024
MAX_NODES = 2_000
MAX_DEPTH = 20  # the root mapping is level 1, `message.params.x` level 4
ALIAS_HINT = "write the value out in full where it is used: campaign files do not allow YAML aliases (*name)"
DEPTH_HINT = f"flatten this value: campaign files allow at most {MAX_DEPTH} levels of nesting"
SIZE_HINT = "a campaign file holds one campaign; move long copy and lists into its template"
KEY_HINT = "write each key as a plain name followed by a colon, e.g. `subject:`"
VALUE_HINT = "correct the value, or put it in quotes to keep it as text"


class _Refused(MarkedYAMLError):
    """A construct campaign files do not allow; carries its own hint."""

    def __init__(self, problem: str, mark: Any, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


def _too_deep(mark: Any) -> _Refused:
    return _Refused(f"the YAML nests deeper than {MAX_DEPTH} levels", mark, DEPTH_HINT)


class _BoundedScanner(RoundTripScanner):
    """Refuses deep flow nesting (`[[[...`) as it is scanned: the scanner's work per token grows with it."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803 - ruamel's name
        if self.flow_level >= MAX_DEPTH:
            raise _too_deep(self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _BoundedComposer(Composer):
    """Refuses aliases (an alias bomb expands exponentially), deep block nesting, huge trees and keys that are
    lists or mappings (which the YAML library cannot always hash) while composing."""

    levels = 0
    nodes = 0

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # a multi-line warning on stderr; anchors do nothing without aliases

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise _Refused(f"YAML alias *{event.anchor} is not allowed in a campaign file", event.start_mark,
                           ALIAS_HINT)
        if isinstance(parent, MappingNode) and index is None and not isinstance(event, ScalarEvent):
            raise _Refused("a key here is a list or mapping, not a name", event.start_mark, KEY_HINT)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(f"the file holds more than {MAX_NODES} YAML values", event.start_mark, SIZE_HINT)
        self.levels += 1
        try:
            if self.levels > MAX_DEPTH:
                raise _too_deep(event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.levels -= 1


class _CheckedConstructor(RoundTripConstructor):
    """Turns a value the YAML library cannot build (`2025-02-30` read as a date, `!!int abc`) into a problem."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            shown = f"{node.value!r} " if isinstance(node.value, str) else ""
            raise _Refused(f"the value {shown}cannot be read ({exc})", node.start_mark, VALUE_HINT) from None


def _yaml_loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Scanner = _BoundedScanner
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _CheckedConstructor
    return yaml


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The file's YAML tree; refuses oversized files, aliases and deep nesting before building it."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), None, f"cannot read the file: {exc}")]
    if len(data) > MAX_FILE_BYTES:
        return None, [Problem(str(path), None, f"the file is larger than {MAX_FILE_BYTES // 1024} KB", SIZE_HINT)]
    try:
        return _yaml_loader().load(text), []
    except _Refused as exc:
        return None, [Problem(str(path), exc.problem_mark.line + 1, exc.problem, exc.hint)]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        return None, [Problem(str(path), line, f"YAML syntax error: {exc.problem or exc.context}",
                              "check indentation and quoting on this line and the one above")]
    except YAMLError as exc:  # e.g. a control character: the reader knows the position, not the line
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        return None, [Problem(str(path), line, f"YAML error: {reason}",
                              "remove the character or fix the text on this line")]
