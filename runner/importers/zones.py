"""Deriving a customer's IANA time zone from an address's country and province code, only where it is clear.

A country that the tz database lists with exactly one zone (zone.tab, shipped with the
`tzdata` package) maps to that zone. Countries with several zones map by province code
through the hand table below, and only for provinces that lie (practically) in one zone;
every other case returns None, which the store keeps as NULL: "use the shop's zone".
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import TZPATH

# Countries whose second zone is a tiny exclave with the same clock, or is named by its own
# province code (listed in _PROVINCE_ZONES under the same country): the main zone applies
# unless the province says otherwise.
_MAIN_ZONE: dict[str, str] = {
    "DE": "Europe/Berlin",  # Büsingen (Europe/Busingen) keeps the same clock as Berlin
    "NZ": "Pacific/Auckland",  # Chatham Islands (province CIT) below
}

_US = {
    "America/New_York": "CT DE DC GA ME MD MA NH NJ NY NC OH PA RI SC VT VA WV",
    "America/Detroit": "MI",  # four Upper Peninsula counties on Central time aside
    "America/Chicago": "AL AR IL IA KS LA MN MS MO OK WI",  # KS: four western counties aside
    "America/Denver": "CO MT NM UT WY",
    "America/Los_Angeles": "CA WA NV OR",  # NV: West Wendover, OR: most of Malheur County aside
    "America/Anchorage": "AK",  # western Aleutians aside; Juneau, Sitka, Nome keep the same clock
    "Pacific/Honolulu": "HI",
    "America/Puerto_Rico": "PR",
    "America/St_Thomas": "VI",
    "Pacific/Guam": "GU",
    "Pacific/Pago_Pago": "AS",
    "Pacific/Saipan": "MP",
    # Split, so None: AZ (Navajo Nation keeps DST), FL, ID, IN, KY, ND, NE, SD, TN, TX.
}
_CA = {
    "America/Edmonton": "AB",
    "America/Vancouver": "BC",  # Creston, the Peace River area and the Rockies' edge aside
    "America/Winnipeg": "MB",
    "America/Moncton": "NB",
    "America/Halifax": "NS PE",  # Cape Breton (America/Glace_Bay) keeps the same clock
    "America/Toronto": "ON QC",  # north-western Ontario and Quebec's Lower North Shore aside
    "America/Regina": "SK",  # Lloydminster aside
    "America/Whitehorse": "YT",
    # Split, so None: NL (Labrador), NT, NU.
}
_AU = {
    "Australia/Sydney": "ACT NSW",  # Broken Hill and Lord Howe Island aside
    "Australia/Melbourne": "VIC",
    "Australia/Brisbane": "QLD",
    "Australia/Adelaide": "SA",
    "Australia/Perth": "WA",  # Eucla aside
    "Australia/Hobart": "TAS",
    "Australia/Darwin": "NT",
}
_BR = {
    "America/Sao_Paulo": "SP RJ MG ES PR SC RS GO DF",
    "America/Bahia": "BA",
    "America/Fortaleza": "CE PI MA RN PB",
    "America/Recife": "PE",  # Fernando de Noronha aside
    "America/Maceio": "AL SE",
    "America/Belem": "PA AP",  # western Pará (America/Santarem) keeps the same clock
    "America/Araguaina": "TO",
    "America/Cuiaba": "MT",
    "America/Campo_Grande": "MS",
    "America/Porto_Velho": "RO",
    "America/Boa_Vista": "RR",
    "America/Rio_Branco": "AC",
    # Split, so None: AM.
}
_MX = {
    "America/Mexico_City": "AGS CHIS CDMX DF COL GTO GRO HGO JAL MEX MICH MOR OAX PUE QRO SLP TAB TLAX VER ZAC",
    "America/Monterrey": "DGO NL",
    "America/Merida": "CAMP YUC",
    "America/Cancun": "Q_ROO QROO",
    "America/Hermosillo": "SON",
    "America/Mazatlan": "BCS SIN",
    "America/Tijuana": "BC",
    # Split, so None: CHIH, COAH, NAY, TAMPS (US-border towns follow US daylight saving).
}
_ES_MAINLAND = ("C VI AB A AL O AV BA PM B BU CC CA S CS CR CO CU GI GR GU SS H HU J LO LE L LU "
                "M MA MU NA OR P PO SA SG SE SO T TE TO V VA BI ZA Z")
_ES = {
    "Europe/Madrid": _ES_MAINLAND,
    "Atlantic/Canary": "GC TF",
    "Africa/Ceuta": "CE ML",
}
_PT = {  # district codes 01-18; Shopify writes them as "PT-01"
    "Europe/Lisbon": " ".join(f"{n:02d}" for n in range(1, 19)),
    "Atlantic/Azores": "20",
    "Atlantic/Madeira": "30",
}
_NZ = {"Pacific/Chatham": "CIT"}


def _by_province(table: dict[str, str]) -> dict[str, str]:
    return {code.replace("_", " "): zone for zone, codes in table.items() for code in codes.split()}


_PROVINCE_ZONES: dict[str, dict[str, str]] = {
    country: _by_province(table)
    for country, table in {"US": _US, "CA": _CA, "AU": _AU, "BR": _BR, "MX": _MX, "ES": _ES, "PT": _PT,
                           "NZ": _NZ}.items()
}


def _zone_tab_text() -> str:
    try:
        return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    for folder in TZPATH:
        candidate = Path(folder) / "zone.tab"
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return ""


@lru_cache(maxsize=1)
def single_zone_countries() -> dict[str, str]:
    """Country code -> zone, for every country the tz database lists with exactly one zone."""
    zones: dict[str, list[str]] = defaultdict(list)
    for line in _zone_tab_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones[fields[0].strip().upper()].append(fields[2].strip())
    return {country: names[0] for country, names in zones.items() if len(names) == 1}


def province_zones() -> dict[str, dict[str, str]]:
    """The hand table: country code -> {province code -> zone} for multi-zone countries."""
    return _PROVINCE_ZONES


def zone_for_address(country_code: str | None, province_code: str | None = None) -> str | None:
    """The IANA zone an address's country (+ province) code leaves no doubt about, else None."""
    country = (country_code or "").strip().upper()
    province = " ".join((province_code or "").strip().upper().split())
    if not country:
        return None
    if province.startswith(country + "-"):  # "US-CA" as well as "CA"
        province = province[len(country) + 1:]
    by_province = _PROVINCE_ZONES.get(country)
    if by_province is not None and province in by_province:
        return by_province[province]
    if country in _MAIN_ZONE:
        return _MAIN_ZONE[country]
    if by_province is not None:
        return None
    return single_zone_countries().get(country)
