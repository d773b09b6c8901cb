"""The streams synced from the source: one declaration shared by the local loader and Airbyte Cloud."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_SCHEMA = "app"
RAW_DATABASE = "RAW"
RAW_SCHEMA = "POSTGRES_AIRBYTE"


@dataclass(frozen=True)
class Stream:
    """A source table synced incrementally by its cursor and deduplicated on its primary key."""

    name: str
    primary_key: tuple[str, ...] = ("id",)
    cursor_field: str = "updated_at"
    sync_mode: str = "incremental_deduped_history"

    @property
    def source_table(self) -> str:
        return f"{SOURCE_SCHEMA}.{self.name}"


# Order matters only for readability: parents before children.
STREAMS: tuple[Stream, ...] = (
    Stream("plans"),
    Stream("users"),
    Stream("banks"),
    Stream("credit_cards"),
    Stream("subscriptions"),
    Stream("payments"),
)


def stream(name: str) -> Stream:
    """The stream named `name`, or a KeyError that lists the known streams."""
    for s in STREAMS:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in STREAMS)
    raise KeyError(f"unknown stream {name!r}; the catalog declares: {known}")
