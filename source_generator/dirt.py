"""The dirt kinds D1-D12 of the data contract, each a small function of one seeded random generator."""

from __future__ import annotations

import random
from datetime import date

# Synonyms a dirty value may use before its case and spacing are changed (D2, D3).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cancelled": ("canceled", "cancelled"),
    "annual": ("annual", "yearly"),
}

UNPARSEABLE_AMOUNTS: tuple[str | None, ...] = ("N/A", "", None)
UNPARSEABLE_DATES: tuple[str, ...] = ("unknown", "N/A", "", "99.99.9999", "not given")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _variants(value: str) -> tuple[str, str, str, str, str]:
    """What `recase` returns for a draw below 0.3, 0.55, 0.7, 0.85 and 1."""
    padded = " " + value + " "
    if value.upper() != value.lower():
        return (
            value.upper(),
            value[:1].upper() + value[1:],
            value.title() + " ",
            padded,
            value + "  ",
        )
    return (padded, padded, padded, padded, value + "  ")


# The variants of each value seen so far: the categorical values are a few dozen, and the hot
# loops dirty some of them on every fifth row.
_VARIANTS: dict[str, tuple[str, str, str, str, str]] = {}


def recase(rng: random.Random, value: str) -> str:
    """A case and spacing variant of `value` that `lower(trim(x))` does not leave unchanged (D1)."""
    variants = _VARIANTS.get(value)
    if variants is None:
        variants = _VARIANTS[value] = _variants(value)
    r = rng.random()
    if r < 0.55:
        return variants[0] if r < 0.3 else variants[1]
    if r < 0.85:
        return variants[2] if r < 0.7 else variants[3]
    return variants[4]


def categorical(rng: random.Random, value: str) -> str:
    """A D1 variant of a canonical categorical value, sometimes through a synonym (D2, D3)."""
    synonyms = SYNONYMS.get(value)
    if synonyms:
        base = synonyms[rng.randrange(len(synonyms))]
        if base != value and rng.random() < 0.3:
            return base  # the plain synonym (`canceled`, `yearly`) is dirt too
        return recase(rng, base)
    return recase(rng, value)


def plain_amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def formatted_amount(rng: random.Random, cents: int) -> str:
    """A non-plain but parseable amount (D4)."""
    plain = plain_amount(cents)
    r = rng.random()
    if r < 0.25:
        return "$" + plain
    if r < 0.5:
        return " " + plain + " "
    if r < 0.75:
        return "USD " + plain
    return f"{cents // 100},{cents % 100:02d}"


def dirty_email(rng: random.Random, email: str) -> str:
    """Upper case or padded (D9); still valid once lowered and trimmed."""
    r = rng.random()
    if r < 0.4:
        return email.upper()
    if r < 0.7:
        return " " + email + " "
    return email[:1].upper() + email[1:] + " "


def invalid_email(rng: random.Random, email: str) -> str:
    """An email without `@` (D10)."""
    return email.replace("@", (" at ", "", ".", "#")[rng.randrange(4)])


def non_iso_date(rng: random.Random, day: date, unreadable: bool) -> str:
    """`day` in a non-ISO format of D11, or (when `unreadable`) text that no format can read."""
    return non_iso_ordinal(rng, day.toordinal(), unreadable)


# The non-ISO spellings of each day seen so far, by ordinal: birth dates span some twenty
# thousand days, so a large cycle's user loop formats each of them about once.
_NON_ISO: dict[int, tuple[str, ...]] = {}


def _non_iso_formats(ordinal: int) -> tuple[str, ...]:
    day = date.fromordinal(ordinal)
    formats: tuple[str, ...] = (
        f"{day.year:04d}/{day.month:02d}/{day.day:02d}",
        f"{day.day:02d}.{day.month:02d}.{day.year:04d}",
    )
    # Epoch seconds only after 1970, so every epoch value stays a plain run of digits.
    if day.year >= 1970:
        formats += (str((ordinal - _EPOCH_ORDINAL) * 86400),)
    return formats


def non_iso_ordinal(rng: random.Random, ordinal: int, unreadable: bool) -> str:
    """`non_iso_date` of the day with this proleptic Gregorian ordinal."""
    if unreadable:
        return UNPARSEABLE_DATES[rng.randrange(len(UNPARSEABLE_DATES))]
    formats = _NON_ISO.get(ordinal)
    if formats is None:
        formats = _NON_ISO[ordinal] = _non_iso_formats(ordinal)
    return formats[rng.randrange(len(formats))]
