"""Templates per language: `winback.fr.html` beside `winback.html` serves French readers.

A reader in fr_CA gets `winback.fr_CA.html` when it exists, else `winback.fr.html`, else
`winback.html`; the text part comes from the same variant (its `.txt`, or derived from its HTML).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .locales import fallback_chain, is_locale

SUFFIXES = (".html", ".txt")


def split_language(stem: str) -> tuple[str, str | None]:
    """`winback.fr` -> ("winback", "fr"); `summer.v2` and `winback` -> (stem, None)."""
    base, dot, tag = stem.rpartition(".")
    if dot and base and is_locale(tag):
        return base, tag
    return stem, None


def variant_for(folder: Path, name: str, locale: str) -> str:
    """The template to render `name` in for a reader in `locale`: name.fr_CA, else name.fr, else name."""
    for tag in fallback_chain(locale):
        if (folder / f"{name}.{tag}.html").is_file():
            return f"{name}.{tag}"
    return name


def language_variants(folder: Path, name: str) -> dict[str, set[str]]:
    """Each language tag, as its file names spell it, with the suffixes found for `name` in that language."""
    found: dict[str, set[str]] = defaultdict(set)
    directory = (folder / name).parent
    if not directory.is_dir():
        return {}
    stem = Path(name).name
    for path in directory.glob(f"{stem}.*"):
        if path.suffix not in SUFFIXES:
            continue
        base, tag = split_language(path.name.removesuffix(path.suffix))
        if tag is not None and base == stem:
            found[tag].add(path.suffix)
    return dict(sorted(found.items()))
