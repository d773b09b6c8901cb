"""Pulumi dynamic providers for the Airbyte source, destination and connection."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from infra.airbyte.client import AirbyteClient, AirbyteNotFound, ApiSettings
from infra.airbyte.kinds import (
    SECRET_HASHES,
    ConnectionKind,
    Kind,
    PostgresSourceKind,
    SnowflakeDestinationKind,
    plain,
)


class AirbyteProvider(ResourceProvider):
    """Create, read, diff, update, delete and import one kind of Airbyte resource.

    Credentials are read from the stack config in `configure`, so they are never pickled into
    the state with the provider.
    """

    kind: ClassVar[Kind]

    def __init__(self, settings: ApiSettings | None = None) -> None:
        super().__init__()
        self._settings = settings

    def configure(self, req: ConfigureRequest) -> None:
        self._settings = ApiSettings.from_config(req.config.get, self._settings)

    def _client(self, *props: Mapping[str, Any]) -> AirbyteClient:
        secrets = [v for p in props for v in self.kind.secret_values(p)]
        return AirbyteClient(self._settings or ApiSettings(), secrets)

    # -- diff ---------------------------------------------------------------------------------
    def field_changes(
        self, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[list[str], list[str]]:
        """(fields updated in place, fields forcing a replacement) between state and program."""
        olds, news = plain(olds), plain(news)
        old, new = self.kind.normalize(olds), self.kind.normalize(news)
        changed = [k for k in new if new[k] != old.get(k)]
        changed += self.kind.changed_secrets(olds, news)
        replaces = [k for k in changed if k in self.kind.replace_fields]
        return [k for k in changed if k not in replaces], replaces

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(k, why) for k, why in self.kind.validate(plain(news))]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        updates, replaces = self.field_changes(olds, news)
        return DiffResult(
            changes=bool(updates or replaces),
            replaces=replaces,
            # A replacement keeps the name; the old one goes first so the by-name look-up in
            # create cannot adopt the resource that is being replaced.
            delete_before_replace=bool(replaces) or None,
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        p = plain(props)
        what = self.kind.describe(p)
        with self._client(p) as c:

            def adopt() -> dict[str, Any] | None:
                found = self.kind.find(c, p)
                if found is None:
                    return None
                return self.kind.patch(c, found[self._api_id], p)

            body = c.call(f"{what}: look-up by name", adopt)
            if body is None:
                body = c.call(f"{what}: create", lambda: self.kind.create(c, p), before_retry=adopt)
        return CreateResult(body[self._api_id], self.kind.outputs(body, self.kind.hashes(p)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        p = plain(props)
        with self._client(p) as c:
            try:
                body = c.call(
                    f"Airbyte {self.kind.label} {id_}: read", lambda: self.kind.get(c, id_)
                )
            except AirbyteNotFound:
                return ReadResult("", {})
        # Airbyte never returns secrets; keep the digests of what was last sent. On import the
        # program's inputs are all there is, so digest those.
        hashes = p.get(SECRET_HASHES) or (self.kind.hashes(p) if self.kind.secret_values(p) else {})
        return ReadResult(id_, self.kind.outputs(body, hashes))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        o, p = plain(olds), plain(news)
        salt = (o.get(SECRET_HASHES) or {}).get("salt")
        with self._client(p) as c:
            body = c.call(f"{self.kind.describe(p)}: update", lambda: self.kind.patch(c, id_, p))
        return UpdateResult(self.kind.outputs(body, self.kind.hashes(p, salt)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        p = plain(props)
        # Already gone is the desired end state.
        with self._client(p) as c, contextlib.suppress(AirbyteNotFound):
            c.call(f"{self.kind.describe(p)}: delete", lambda: self.kind.delete(c, id_))

    @property
    def _api_id(self) -> str:
        head, _, tail = self.kind.id_key.partition("_")
        return head + tail.capitalize()


class PostgresSourceProvider(AirbyteProvider):
    kind = PostgresSourceKind()


class SnowflakeDestinationProvider(AirbyteProvider):
    kind = SnowflakeDestinationKind()


class ConnectionProvider(AirbyteProvider):
    kind = ConnectionKind()
