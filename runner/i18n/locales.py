"""Locale names as the settings, the store and template file names spell them (Babel's `fr_CA`)."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError

DEFAULT_LOCALE = "en_US"


def parse_locale(raw: str) -> str:
    """'fr-CA', 'fr_ca' and ' pt-br ' -> 'fr_CA' and 'pt_BR'; a ValueError for what CLDR does not know."""
    try:
        return str(Locale.parse(raw.strip().replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        raise ValueError(f"{raw!r} is not a locale: expected a language and an optional region "
                         "such as en_US, fr or de_CH") from None


def is_locale(text: str) -> bool:
    """Whether `text` names a locale (the `fr` in `winback.fr.html`)."""
    try:
        parse_locale(text)
    except ValueError:
        return False
    return True


def locale_or_default(name: str | None, default: str) -> str:
    """A customer's locale, or the shop's when it is empty or unknown."""
    if not name:
        return default
    try:
        return parse_locale(name)
    except ValueError:
        return default


def fallback_chain(locale: str) -> list[str]:
    """The locales whose templates may serve `locale`, most specific first: fr_CA -> [fr_CA, fr]."""
    parts = locale.split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]
