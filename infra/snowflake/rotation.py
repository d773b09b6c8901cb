"""When a service user's key rotates: every `mdp:snowflake.keyRotationDays`, or on demand with `mdp rotate-key`."""

from __future__ import annotations

from datetime import UTC, date, datetime

# Generations count from here: every stack rotates on the same days, whenever it was created.
ROTATION_EPOCH = date(2026, 1, 1)
DEFAULT_ROTATION_DAYS = 90


def today() -> date:
    return datetime.now(UTC).date()


def key_generation(rotation_days: int, manual: int = 0, on: date | None = None) -> int:
    """The user's current key generation: one more each `rotation_days` and each manual rotation.

    Generation g's key is the one the secret and every consumer use; generation g-1's stays in
    the other slot until the next rotation replaces it, so a consumer still on it keeps working.
    """
    days = max(0, ((on or today()) - ROTATION_EPOCH).days)
    return 1 + days // rotation_days + manual


def slots(generation: int) -> tuple[int, int]:
    """The generations in RSA_PUBLIC_KEY and RSA_PUBLIC_KEY_2: even ones in the first slot.

    A new generation always lands in the slot of generation g-2, the one no consumer uses.
    """
    previous = generation - 1
    return (generation, previous) if generation % 2 == 0 else (previous, generation)
