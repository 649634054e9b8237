"""Plain-text alternatives derived from HTML email bodies, using only the standard library."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content never reaches the text part.
_DROPPED = {"head", "style", "script", "title", "template", "noscript"}
# Elements that sit on their own paragraph (a blank line before and after).
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
# Elements that start and end on their own line.
_LINES = {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "main", "nav",
          "aside", "center", "address", "figure", "figcaption", "hr", "form"}
# Void elements never get an end tag, so they are never pushed on the open-element stack.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all|visibility\s*:\s*hidden", re.I)


def _hidden(attrs: dict[str, str | None]) -> bool:
    """True for elements a reader never sees, such as the preheader span."""
    if "hidden" in attrs or "preheader" in (attrs.get("class") or "").split():
        return True
    return bool(_HIDDEN_STYLE.search(attrs.get("style") or ""))


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, this element hides its content)
        self.link: tuple[str, list[str]] | None = None  # (href, text collected so far)
        self.pre = 0

    @property
    def skipping(self) -> bool:
        return any(hides for _, hides in self.stack)

    def emit(self, text: str) -> None:
        if self.link is not None:
            self.link[1].append(text)
        else:
            self.out.append(text)

    def newlines(self, count: int) -> None:
        """End the current line (count=1) or paragraph (count=2), without stacking blank lines."""
        if self.link is not None:  # a block inside a link: keep the link text on one line
            self.link[1].append(" ")
            return
        tail = "".join(self.out[-8:])
        present = tail[len(tail.rstrip()):].count("\n")
        if self.out and present < count:
            self.out.append("\n" * (count - present))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag not in _VOID:
            self.stack.append((tag, tag in _DROPPED or _hidden(attributes)))
        if self.skipping:
            return
        if tag == "br":
            self.emit("\n")
        elif tag in _PARAGRAPHS:
            self.newlines(2)
        elif tag in _LINES:
            self.newlines(1)
        elif tag in {"td", "th"}:
            self.emit(" ")
        if tag == "li":
            self.emit("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag == "a" and self.link is None:
            self.link = ((attributes.get("href") or "").strip(), [])

    def handle_endtag(self, tag: str) -> None:
        index = max((i for i, (open_tag, _) in enumerate(self.stack) if open_tag == tag), default=-1)
        if tag in _VOID or index < 0:
            return
        # Visible when neither this element nor one around it hides its content; anything left
        # open inside it (an unclosed hidden <span>, say) closes with it and does not count.
        hidden = any(hides for _, hides in self.stack[:index + 1])
        del self.stack[index:]
        if hidden:
            return
        if tag == "a" and self.link is not None:
            href, parts = self.link
            self.link = None
            self.out.append(_link_text(" ".join("".join(parts).split()), href))
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _PARAGRAPHS:
            self.newlines(2)
        elif tag in _LINES:
            self.newlines(1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.emit(data if self.pre else re.sub(r"\s+", " ", data))


def _link_text(text: str, href: str) -> str:
    if not href or href.startswith("#"):
        return text
    if not text:
        return ""  # an image-only link: the same link appears as text next to it
    shown = href.removeprefix("mailto:")
    if text in (href, shown):
        return href if text == href else shown
    return f"{text} ({href})"


def html_to_text(html: str) -> str:
    """The readable text of an HTML email: one paragraph per block, links as "text (url)"."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    if parser.link is not None:  # an unclosed <a> at the end
        href, parts = parser.link
        parser.out.append(_link_text(" ".join("".join(parts).split()), href))
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(parser.out).split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):  # at most one blank line in a row
            kept.append(line)
    return "\n".join(kept).strip()
