"""The three Airbyte resource kinds: their fields, request bodies and live-state readers."""

from __future__ import annotations

import hashlib
import secrets as _secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airbyte_api import api, models

from infra.airbyte.client import AirbyteClient, AirbyteError, AirbyteNotFound

# Pulumi's marker for a value not known until apply (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRET_HASHES = "secret_hashes"
PAGE = 100

REPLICATION_METHODS = {"cursor": "Standard", "cdc": "CDC"}
# The connection's schedule, spelled as Airbyte's API spells it (`scheduleType`): "manual"
# leaves every sync to Airflow. The config section, the component and the resource all use it.
ScheduleType = Literal["cron", "manual"]
SCHEMA_CHANGE_POLICIES = tuple(e.value for e in models.NonBreakingSchemaUpdatesBehaviorEnum)


def plain(value: Any) -> Any:
    """The value with Pulumi secret wrappers removed, at any depth."""
    if isinstance(value, Mapping):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _str(v: Any) -> Any:
    return v if v is None or v == UNKNOWN else str(v)


def _int(v: Any) -> Any:
    # Pulumi sends numbers as floats.
    return v if v is None or v == UNKNOWN else int(v)


def _whole(v: Any) -> Any:
    # 5432.0 from Pulumi becomes 5432; anything else is left for the SDK model to reject.
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _str_list(v: Any) -> Any:
    return v if v is None or v == UNKNOWN else [str(x) for x in v]


def _streams(v: Any) -> Any:
    if v is None or v == UNKNOWN:
        return v
    out = []
    for s in v:
        out.append(
            {
                "name": str(s["name"]),
                "sync_mode": str(s.get("sync_mode") or ""),
                "cursor_field": [str(x) for x in s.get("cursor_field") or []],
                "primary_key": [[str(x) for x in pk] for pk in s.get("primary_key") or []],
            }
        )
    return sorted(out, key=lambda s: s["name"])


@dataclass(frozen=True)
class Field:
    name: str
    norm: Callable[[Any], Any] = _str
    replace: bool = False
    secret: bool = False
    required: bool = True


def _hash(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()


class Kind:
    """What differs between a source, a destination and a connection."""

    label: str
    id_key: str
    fields: tuple[Field, ...]

    # -- properties ---------------------------------------------------------------------------
    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)

    @property
    def replace_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.replace)

    @property
    def update_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if not f.replace)

    def normalize(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical non-secret values, comparable between desired and live state."""
        return {f.name: f.norm(props.get(f.name)) for f in self.fields if not f.secret}

    def secret_values(self, props: Mapping[str, Any]) -> list[str]:
        return [str(props[k]) for k in self.secret_fields if props.get(k) not in (None, UNKNOWN)]

    def hashes(self, props: Mapping[str, Any], salt: str | None = None) -> dict[str, str]:
        """Salted digests of the secret inputs: enough to see a change, useless to an attacker."""
        salt = salt or _secrets.token_hex(16)
        out = {"salt": salt}
        for k in self.secret_fields:
            if props.get(k) not in (None, UNKNOWN):
                out[k] = _hash(salt, str(props[k]))
        return out

    def changed_secrets(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        old = olds.get(SECRET_HASHES) or {}
        salt = old.get("salt")
        changed = []
        for k in self.secret_fields:
            v = news.get(k)
            if (
                v == UNKNOWN
                or salt is None
                or old.get(k) != (_hash(salt, str(v)) if v is not None else None)
            ):
                changed.append(k)
        return changed

    def validate(self, props: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(property, reason) for each invalid input; values unknown until apply are skipped."""
        return [
            (f.name, f"{f.name} is required")
            for f in self.fields
            if f.required and props.get(f.name) in (None, "", [])
        ]

    def describe(self, props: Mapping[str, Any]) -> str:
        return f"Airbyte {self.label} '{props.get('name')}'"

    def outputs(self, body: Mapping[str, Any], hashes: Mapping[str, str]) -> dict[str, Any]:
        """Plain outputs: the live non-secret state, the id and the secret digests; never a secret."""
        outs = self.live(body)
        outs[self.id_key] = body[_api_id_key(self.id_key)]
        outs[SECRET_HASHES] = dict(hashes)
        return outs

    # -- API ----------------------------------------------------------------------------------
    def live(self, body: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, c: AirbyteClient, id_: str) -> dict[str, Any]:
        raise NotImplementedError

    def patch(self, c: AirbyteClient, id_: str, props: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def delete(self, c: AirbyteClient, id_: str) -> None:
        raise NotImplementedError

    def list(self, c: AirbyteClient, workspace_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def is_same(self, body: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
        """Whether a listed resource is the one `props` declares (matched by name)."""
        return body.get("name") == props.get("name")

    def find(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any] | None:
        """The resource of this name in the workspace, so a retried create adopts it."""
        listed = self.list(c, str(props["workspace_id"]))
        matches = [b for b in listed if self.is_same(b, props) and b.get("status") != "deprecated"]
        if len(matches) > 1:
            ids = ", ".join(b[_api_id_key(self.id_key)] for b in matches)
            raise AirbyteError(
                f"{self.describe(props)}: {len(matches)} resources with this name exist in "
                f"workspace {props['workspace_id']} ({ids}). Nothing was changed. Delete the "
                "extra ones in the Airbyte UI, or import the right one with the `import_` "
                "resource option, then run `pulumi up` again."
            )
        return matches[0] if matches else None


def _api_id_key(id_key: str) -> str:
    head, _, tail = id_key.partition("_")
    return head + tail.capitalize()


def _json(response: Any) -> dict[str, Any]:
    # The SDK has validated the body against its models; the raw JSON keeps the exact values.
    data: dict[str, Any] = response.raw_response.json()
    return data


def _expect_type(body: dict[str, Any], key: str, wanted: str, what: str) -> dict[str, Any]:
    # Importing the wrong id would otherwise show up as a confusing diff of every field.
    if body.get(key) != wanted:
        raise AirbyteError(
            f"Airbyte {what} is a {body.get(key)!r} connector, not {wanted!r}. Nothing was "
            "changed. Check the id given to the `import_` option."
        )
    return body


def _paged(fetch: Callable[[int], Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = fetch(offset).raw_response.json()
        data = page.get("data") or []
        out.extend(data)
        # The server may cap the page below the limit asked for; `next` says whether more exist.
        if not data or not page.get("next"):
            return out
        offset += len(data)


# ---- source -----------------------------------------------------------------------------------
class PostgresSourceKind(Kind):
    label = "source"
    id_key = "source_id"
    fields = (
        Field("workspace_id", replace=True),
        Field("name"),
        Field("host"),
        Field("port", _int),
        # Another database or replication method invalidates the saved cursors or LSN: a new
        # source (and so a new connection) makes the full resync explicit.
        Field("database", replace=True),
        Field("replication_method", replace=True),
        Field("cdc_publication", required=False),
        Field("cdc_replication_slot", required=False),
        Field("username"),
        Field("schemas", _str_list),
        Field("ssl_mode"),
        Field("tunnel_host"),
        Field("tunnel_port", _int),
        Field("tunnel_user"),
        Field("password", secret=True),
        Field("ssh_key", secret=True),
    )

    def validate(self, props: Mapping[str, Any]) -> list[tuple[str, str]]:
        failures = super().validate(props)
        method = props.get("replication_method")
        if method not in (None, UNKNOWN, *REPLICATION_METHODS):
            failures.append(
                (
                    "replication_method",
                    f"must be one of {sorted(REPLICATION_METHODS)}, not {method!r}",
                )
            )
        if method == "cdc":
            for k in ("cdc_publication", "cdc_replication_slot"):
                if not props.get(k):
                    failures.append((k, f"{k} is required when replication_method is 'cdc'"))
        if props.get("ssl_mode") not in (None, UNKNOWN, "require"):
            failures.append(
                ("ssl_mode", "must be 'require': the source never accepts an unencrypted session")
            )
        return failures

    def configuration(self, p: Mapping[str, Any]) -> models.SourcePostgres:
        method: models.SourcePostgresUpdateMethod
        if p["replication_method"] == "cdc":
            method = models.ReadChangesUsingWriteAheadLogCDC(
                publication=p["cdc_publication"], replication_slot=p["cdc_replication_slot"]
            )
        else:
            method = models.SourcePostgresScanChangesWithUserDefinedCursor()
        return models.SourcePostgres(
            host=p["host"],
            port=_whole(p["port"]),
            database=p["database"],
            username=p["username"],
            password=p["password"],
            schemas=list(p["schemas"]),
            ssl_mode=models.SourcePostgresRequire(),
            replication_method=method,
            tunnel_method=models.SourcePostgresSSHKeyAuthentication(
                tunnel_host=p["tunnel_host"],
                tunnel_port=_whole(p["tunnel_port"]),
                tunnel_user=p["tunnel_user"],
                ssh_key=p["ssh_key"],
            ),
        )

    def live(self, body: Mapping[str, Any]) -> dict[str, Any]:
        cfg = body.get("configuration") or {}
        method = cfg.get("replication_method") or {}
        tunnel = cfg.get("tunnel_method") or {}
        by_api = {v: k for k, v in REPLICATION_METHODS.items()}
        return self.normalize(
            {
                "workspace_id": body.get("workspaceId"),
                "name": body.get("name"),
                "host": cfg.get("host"),
                "port": cfg.get("port", 5432),
                "database": cfg.get("database"),
                "replication_method": by_api.get(str(method.get("method")), method.get("method")),
                "cdc_publication": method.get("publication"),
                "cdc_replication_slot": method.get("replication_slot"),
                "username": cfg.get("username"),
                "schemas": cfg.get("schemas"),
                "ssl_mode": (cfg.get("ssl_mode") or {}).get("mode"),
                "tunnel_host": tunnel.get("tunnel_host"),
                "tunnel_port": tunnel.get("tunnel_port"),
                "tunnel_user": tunnel.get("tunnel_user"),
            }
        )

    def is_same(self, body: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
        return super().is_same(body, props) and body.get("sourceType") == "postgres"

    def create(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any]:
        req = models.SourceCreateRequest(
            name=props["name"],
            workspace_id=props["workspace_id"],
            configuration=self.configuration(props),
        )
        return _json(c.sdk.sources.create_source(request=req))

    def get(self, c: AirbyteClient, id_: str) -> dict[str, Any]:
        body = _json(c.sdk.sources.get_source(request=api.GetSourceRequest(source_id=id_)))
        return _expect_type(body, "sourceType", "postgres", f"source {id_}")

    def patch(self, c: AirbyteClient, id_: str, props: Mapping[str, Any]) -> dict[str, Any]:
        body = models.SourcePatchRequest(
            name=props["name"], configuration=self.configuration(props)
        )
        req = api.PatchSourceRequest(source_id=id_, source_patch_request=body)
        return _json(c.sdk.sources.patch_source(request=req))

    def delete(self, c: AirbyteClient, id_: str) -> None:
        c.sdk.sources.delete_source(request=api.DeleteSourceRequest(source_id=id_))

    def list(self, c: AirbyteClient, workspace_id: str) -> list[dict[str, Any]]:
        return _paged(
            lambda offset: c.sdk.sources.list_sources(
                request=api.ListSourcesRequest(
                    workspace_ids=[workspace_id], limit=PAGE, offset=offset
                )
            )
        )


# ---- destination ------------------------------------------------------------------------------
class SnowflakeDestinationKind(Kind):
    label = "destination"
    id_key = "destination_id"
    fields = (
        Field("workspace_id", replace=True),
        Field("name"),
        Field("host"),
        # Another database leaves the loaded data behind: a new destination and connection
        # reload everything into the new one.
        Field("database", replace=True),
        Field("schema"),
        # Where Airbyte keeps its internal tables; unset, the first sync creates the schema
        # "airbyte_internal", which the destination's role may not (it has no CREATE SCHEMA).
        Field("raw_data_schema"),
        Field("role"),
        Field("warehouse"),
        Field("username"),
        Field("private_key", secret=True),
    )

    def configuration(self, p: Mapping[str, Any]) -> models.DestinationSnowflake:
        return models.DestinationSnowflake(
            host=p["host"],
            database=p["database"],
            schema_=p["schema"],
            raw_data_schema=p["raw_data_schema"],
            role=p["role"],
            warehouse=p["warehouse"],
            username=p["username"],
            credentials=models.DestinationSnowflakeKeyPairAuthentication(
                private_key=p["private_key"]
            ),
        )

    def live(self, body: Mapping[str, Any]) -> dict[str, Any]:
        cfg = body.get("configuration") or {}
        return self.normalize(
            {
                "workspace_id": body.get("workspaceId"),
                "name": body.get("name"),
                "host": cfg.get("host"),
                "database": cfg.get("database"),
                "schema": cfg.get("schema"),
                "raw_data_schema": cfg.get("raw_data_schema"),
                "role": cfg.get("role"),
                "warehouse": cfg.get("warehouse"),
                "username": cfg.get("username"),
            }
        )

    def is_same(self, body: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
        return super().is_same(body, props) and body.get("destinationType") == "snowflake"

    def create(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any]:
        req = models.DestinationCreateRequest(
            name=props["name"],
            workspace_id=props["workspace_id"],
            configuration=self.configuration(props),
        )
        return _json(c.sdk.destinations.create_destination(request=req))

    def get(self, c: AirbyteClient, id_: str) -> dict[str, Any]:
        req = api.GetDestinationRequest(destination_id=id_)
        body = _json(c.sdk.destinations.get_destination(request=req))
        return _expect_type(body, "destinationType", "snowflake", f"destination {id_}")

    def patch(self, c: AirbyteClient, id_: str, props: Mapping[str, Any]) -> dict[str, Any]:
        body = models.DestinationPatchRequest(
            name=props["name"], configuration=self.configuration(props)
        )
        req = api.PatchDestinationRequest(destination_id=id_, destination_patch_request=body)
        return _json(c.sdk.destinations.patch_destination(request=req))

    def delete(self, c: AirbyteClient, id_: str) -> None:
        c.sdk.destinations.delete_destination(
            request=api.DeleteDestinationRequest(destination_id=id_)
        )

    def list(self, c: AirbyteClient, workspace_id: str) -> list[dict[str, Any]]:
        return _paged(
            lambda offset: c.sdk.destinations.list_destinations(
                request=api.ListDestinationsRequest(
                    workspace_ids=[workspace_id], limit=PAGE, offset=offset
                )
            )
        )


# ---- connection -------------------------------------------------------------------------------
class ConnectionKind(Kind):
    label = "connection"
    id_key = "connection_id"
    fields = (
        Field("workspace_id", replace=True),
        # The API cannot move a connection to another source or destination.
        Field("source_id", replace=True),
        Field("destination_id", replace=True),
        Field("name"),
        Field("streams", _streams),
        Field("schedule_type"),
        Field("cron_expression", required=False),
        Field("namespace_definition"),
        Field("namespace_format", required=False),
        Field("prefix", required=False),
        Field("non_breaking_schema_updates_behavior"),
        Field("status"),
    )

    def validate(self, props: Mapping[str, Any]) -> list[tuple[str, str]]:
        failures = super().validate(props)
        kind = props.get("schedule_type")
        if kind not in (None, UNKNOWN, *get_args(ScheduleType)):
            failures.append(
                ("schedule_type", f"must be one of {list(get_args(ScheduleType))}, not {kind!r}")
            )
        if kind == "cron" and not props.get("cron_expression"):
            failures.append(("cron_expression", "a cron schedule needs a Quartz cron expression"))
        policy = props.get("non_breaking_schema_updates_behavior")
        if policy not in (None, UNKNOWN, *SCHEMA_CHANGE_POLICIES):
            failures.append(
                (
                    "non_breaking_schema_updates_behavior",
                    f"must be one of {list(SCHEMA_CHANGE_POLICIES)}",
                )
            )
        streams = props.get("streams")
        if isinstance(streams, list):
            modes = {e.value for e in models.ConnectionSyncModeEnum}
            for s in streams:
                if not isinstance(s, Mapping) or not s.get("name"):
                    failures.append(("streams", "every stream needs a name"))
                elif s.get("sync_mode") not in modes:
                    failures.append(
                        ("streams", f"stream {s['name']}: unknown sync mode {s.get('sync_mode')!r}")
                    )
                elif "deduped" in str(s.get("sync_mode")) and not s.get("primary_key"):
                    failures.append(
                        ("streams", f"stream {s['name']}: a deduplicated sync needs a primary key")
                    )
        return failures

    def _schedule(self, p: Mapping[str, Any]) -> models.AirbyteAPIConnectionSchedule:
        if p["schedule_type"] == "manual":
            return models.AirbyteAPIConnectionSchedule(schedule_type=models.ScheduleTypeEnum.MANUAL)
        return models.AirbyteAPIConnectionSchedule(
            schedule_type=models.ScheduleTypeEnum.CRON, cron_expression=p["cron_expression"]
        )

    def _streams(self, p: Mapping[str, Any]) -> models.StreamConfigurations:
        return models.StreamConfigurations(
            streams=[
                models.StreamConfiguration(
                    name=s["name"],
                    sync_mode=models.ConnectionSyncModeEnum(s["sync_mode"]),
                    cursor_field=s["cursor_field"],
                    primary_key=s["primary_key"],
                )
                for s in _streams(p["streams"])
            ]
        )

    def live(self, body: Mapping[str, Any]) -> dict[str, Any]:
        schedule = body.get("schedule") or {}
        streams = (body.get("configurations") or {}).get("streams") or []
        return self.normalize(
            {
                "workspace_id": body.get("workspaceId"),
                "source_id": body.get("sourceId"),
                "destination_id": body.get("destinationId"),
                "name": body.get("name"),
                "streams": [
                    {
                        "name": s.get("name"),
                        "sync_mode": s.get("syncMode"),
                        "cursor_field": s.get("cursorField"),
                        "primary_key": s.get("primaryKey"),
                    }
                    for s in streams
                ],
                "schedule_type": schedule.get("scheduleType"),
                "cron_expression": schedule.get("cronExpression"),
                "namespace_definition": body.get("namespaceDefinition"),
                "namespace_format": body.get("namespaceFormat"),
                "prefix": body.get("prefix") or "",
                "non_breaking_schema_updates_behavior": body.get(
                    "nonBreakingSchemaUpdatesBehavior"
                ),
                "status": body.get("status"),
            }
        )

    def find(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any] | None:
        found = super().find(c, props)
        if found and (
            found.get("sourceId") != props.get("source_id")
            or found.get("destinationId") != props.get("destination_id")
        ):
            raise AirbyteError(
                f"{self.describe(props)}: a connection with this name already links other "
                f"endpoints ({found.get('connectionId')}). Nothing was changed. Rename or "
                "delete it in the Airbyte UI, then run `pulumi up` again."
            )
        return found

    def create(self, c: AirbyteClient, props: Mapping[str, Any]) -> dict[str, Any]:
        req = models.ConnectionCreateRequest(
            name=props["name"],
            source_id=props["source_id"],
            destination_id=props["destination_id"],
            configurations=self._streams(props),
            schedule=self._schedule(props),
            namespace_definition=models.NamespaceDefinitionEnum(props["namespace_definition"]),
            namespace_format=props.get("namespace_format"),
            prefix=props.get("prefix") or "",
            non_breaking_schema_updates_behavior=models.NonBreakingSchemaUpdatesBehaviorEnum(
                props["non_breaking_schema_updates_behavior"]
            ),
            status=models.ConnectionStatusEnum(props["status"]),
        )
        return _json(c.sdk.connections.create_connection(request=req))

    def get(self, c: AirbyteClient, id_: str) -> dict[str, Any]:
        req = api.GetConnectionRequest(connection_id=id_)
        body = _json(c.sdk.connections.get_connection(request=req))
        # Airbyte keeps deleted connections around as "deprecated".
        if body.get("status") == "deprecated":
            raise AirbyteNotFound(f"connection {id_} was deleted in Airbyte", 404)
        return body

    def patch(self, c: AirbyteClient, id_: str, props: Mapping[str, Any]) -> dict[str, Any]:
        body = models.ConnectionPatchRequest(
            name=props["name"],
            configurations=self._streams(props),
            schedule=self._schedule(props),
            namespace_definition=models.NamespaceDefinitionEnumNoDefault(
                props["namespace_definition"]
            ),
            namespace_format=props.get("namespace_format"),
            prefix=props.get("prefix") or "",
            non_breaking_schema_updates_behavior=models.NonBreakingSchemaUpdatesBehaviorEnumNoDefault(
                props["non_breaking_schema_updates_behavior"]
            ),
            status=models.ConnectionStatusEnum(props["status"]),
        )
        req = api.PatchConnectionRequest(connection_id=id_, connection_patch_request=body)
        return _json(c.sdk.connections.patch_connection(request=req))

    def delete(self, c: AirbyteClient, id_: str) -> None:
        c.sdk.connections.delete_connection(request=api.DeleteConnectionRequest(connection_id=id_))

    def list(self, c: AirbyteClient, workspace_id: str) -> list[dict[str, Any]]:
        return _paged(
            lambda offset: c.sdk.connections.list_connections(
                request=api.ListConnectionsRequest(
                    workspace_ids=[workspace_id], limit=PAGE, offset=offset
                )
            )
        )
