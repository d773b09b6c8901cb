"""The Airbyte dynamic providers against the fake Airbyte API: lifecycle, diff, drift, retries, secrets."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from core.catalog import STREAMS
from infra.airbyte import ApiSettings
from infra.airbyte.client import AirbyteClient, AirbyteError, Redactor
from infra.airbyte.kinds import UNKNOWN
from infra.airbyte.provider import (
    AirbyteProvider,
    ConnectionProvider,
    PostgresSourceProvider,
    SnowflakeDestinationProvider,
)
from rehearsal.fake_airbyte import MASK, FakeAirbyte
from tests.infra.airbyte.conftest import (
    DB_PASSWORD,
    SECRET_FRAGMENTS,
    SNOWFLAKE_KEY,
    SSH_KEY,
    connection_props,
    destination_props,
    source_props,
)

Providers = tuple[PostgresSourceProvider, SnowflakeDestinationProvider, ConnectionProvider]


def assert_no_secret(text: Any) -> None:
    dumped = text if isinstance(text, str) else json.dumps(text, default=str)
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in dumped, f"a secret leaked: {dumped[:300]}"


def create_all(fake: FakeAirbyte, providers: Providers) -> dict[str, Any]:
    src, dst, conn = providers
    s = src.create(source_props(fake))
    d = dst.create(destination_props(fake))
    c = conn.create(connection_props(fake, s.id, d.id))
    return {"source": s, "destination": d, "connection": c}


# -- lifecycle ----------------------------------------------------------------------------------
def test_full_lifecycle(fake: FakeAirbyte, providers: Providers) -> None:
    src, dst, conn = providers
    made = create_all(fake, providers)
    s, d, c = made["source"], made["destination"], made["connection"]

    stored = fake.sources[s.id]["configuration"]
    assert stored["ssl_mode"] == {"mode": "require"}
    assert stored["replication_method"] == {"method": "Standard"}
    assert stored["tunnel_method"]["tunnel_method"] == "SSH_KEY_AUTH"
    assert stored["tunnel_method"]["tunnel_host"] == "198.51.100.10"
    assert stored["tunnel_method"]["ssh_key"] == SSH_KEY
    assert stored["password"] == DB_PASSWORD and stored["schemas"] == ["app"]
    creds = fake.destinations[d.id]["configuration"]["credentials"]
    assert creds == {"auth_type": "Key Pair Authentication", "private_key": SNOWFLAKE_KEY}
    live = fake.connections[c.id]
    assert live["namespaceDefinition"] == "custom_format"
    assert live["namespaceFormat"] == "POSTGRES_AIRBYTE"
    assert live["nonBreakingSchemaUpdatesBehavior"] == "propagate_columns"
    assert live["schedule"] == {"scheduleType": "cron", "cronExpression": "0 0 17 * * ? UTC"}
    assert sorted(st["name"] for st in live["configurations"]["streams"]) == sorted(
        st.name for st in STREAMS
    )
    for st in live["configurations"]["streams"]:
        assert st["syncMode"] == "incremental_deduped_history"
        assert st["cursorField"] == ["updated_at"] and st["primaryKey"] == [["id"]]

    # read returns what create returned, and the program's inputs then show no change
    for provider, created, props in (
        (src, s, source_props(fake)),
        (dst, d, destination_props(fake)),
        (conn, c, connection_props(fake, s.id, d.id)),
    ):
        read = provider.read(created.id, created.outs)
        assert read.id == created.id and read.outs == created.outs
        assert provider.diff(created.id, read.outs, props).changes is False

    # update in place: the schedule moves to manual-only (Airflow triggers the sync)
    manual = connection_props(fake, s.id, d.id, schedule_type="manual", cron_expression=None)
    diff = conn.diff(c.id, c.outs, manual)
    assert diff.changes and not diff.replaces
    updated = conn.update(c.id, c.outs, manual)
    assert fake.connections[c.id]["schedule"] == {"scheduleType": "manual"}
    assert updated.outs["schedule_type"] == "manual"
    assert updated.outs["connection_id"] == c.id

    # delete, and deleting again is a no-op rather than an error
    conn.delete(c.id, updated.outs)
    dst.delete(d.id, d.outs)
    src.delete(s.id, s.outs)
    assert not fake.sources and not fake.destinations
    assert conn.read(c.id, updated.outs).id == ""
    src.delete(s.id, s.outs)


def test_cdc_source_sends_publication_and_slot(fake: FakeAirbyte, providers: Providers) -> None:
    src = providers[0]
    props = source_props(
        fake,
        replication_method="cdc",
        cdc_publication="airbyte_publication",
        cdc_replication_slot="airbyte_slot",
    )
    created = src.create(props)
    method = fake.sources[created.id]["configuration"]["replication_method"]
    assert method["method"] == "CDC"
    assert (method["publication"], method["replication_slot"]) == (
        "airbyte_publication",
        "airbyte_slot",
    )
    assert created.outs["replication_method"] == "cdc"
    assert src.diff(created.id, created.outs, props).changes is False


def test_import_by_id_adopts_without_changes(fake: FakeAirbyte, providers: Providers) -> None:
    src = providers[0]
    created = src.create(source_props(fake))
    # On import the engine passes the program's inputs (no digests yet) and the id.
    imported = src.read(created.id, source_props(fake))
    assert imported.id == created.id
    assert_no_secret(imported.outs)
    assert src.diff(created.id, imported.outs, source_props(fake)).changes is False
    # ...and a different password in the program is still seen as a change after import
    assert src.diff(created.id, imported.outs, source_props(fake, password="other-pw-123")).changes


def test_importing_an_id_of_another_connector_type_is_refused(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    created = src.create(source_props(fake))
    fake.edit("sources", created.id, sourceType="mysql")
    with pytest.raises(AirbyteError) as err:
        src.read(created.id, source_props(fake))
    assert "'mysql' connector, not 'postgres'" in str(err.value)


# -- diff matrix --------------------------------------------------------------------------------
SOURCE_CHANGES = {
    "workspace_id": ("99999999-2222-3333-4444-555555555555", "replace"),
    "database": ("app2", "replace"),
    "replication_method": ("cdc", "replace"),
    "name": ("renamed", "update"),
    "host": ("new-db.eu-west-3.rds.amazonaws.com", "update"),
    "port": (5433.0, "update"),
    "username": ("other_reader", "update"),
    "schemas": (["app", "audit"], "update"),
    "tunnel_host": ("198.51.100.99", "update"),
    "tunnel_port": (2222.0, "update"),
    "tunnel_user": ("tunnel", "update"),
    "cdc_publication": ("pub", "update"),
    "password": ("rotated-password-1", "update"),
    "ssh_key": (
        "-----" + "BEGIN RSA PRIVATE KEY-----\nrotated\n-----END RSA PRIVATE KEY-----\n",
        "update",
    ),
}
DESTINATION_CHANGES = {
    "workspace_id": ("99999999-2222-3333-4444-555555555555", "replace"),
    "database": ("PROD_RAW", "replace"),
    "name": ("renamed", "update"),
    "host": ("zz99999.snowflakecomputing.com", "update"),
    "schema": ("OTHER", "update"),
    "raw_data_schema": ("airbyte_internal", "update"),
    "role": ("OTHER_ROLE", "update"),
    "warehouse": ("OTHER_WH", "update"),
    "username": ("OTHER_SVC", "update"),
    "private_key": (
        "-----" + "BEGIN PRIVATE KEY-----\nrotated\n-----END PRIVATE KEY-----\n",
        "update",
    ),
}
CONNECTION_CHANGES = {
    "source_id": ("another-source", "replace"),
    "destination_id": ("another-destination", "replace"),
    "workspace_id": ("99999999-2222-3333-4444-555555555555", "replace"),
    "name": ("renamed", "update"),
    "schedule_type": ("manual", "update"),
    "cron_expression": ("0 30 6 * * ? Europe/Paris", "update"),
    "namespace_format": ("OTHER_SCHEMA", "update"),
    "namespace_definition": ("destination", "update"),
    "non_breaking_schema_updates_behavior": ("ignore", "update"),
    "status": ("inactive", "update"),
    "prefix": ("pg_", "update"),
    "streams": (
        [
            {
                "name": "users",
                "sync_mode": "incremental_deduped_history",
                "cursor_field": ["updated_at"],
                "primary_key": [["id"]],
            }
        ],
        "update",
    ),
}


def _matrix_case(
    fake: FakeAirbyte, providers: Providers, kind: str
) -> tuple[AirbyteProvider, Any, dict[str, Any]]:
    src, dst, conn = providers
    if kind == "source":
        props = source_props(fake)
        return src, src.create(props), props
    if kind == "destination":
        props = destination_props(fake)
        return dst, dst.create(props), props
    s, d = src.create(source_props(fake)), dst.create(destination_props(fake))
    props = connection_props(fake, s.id, d.id)
    return conn, conn.create(props), props


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("source", SOURCE_CHANGES),
        ("destination", DESTINATION_CHANGES),
        ("connection", CONNECTION_CHANGES),
    ],
)
def test_diff_matrix(
    fake: FakeAirbyte, providers: Providers, kind: str, changes: dict[str, Any]
) -> None:
    provider, created, props = _matrix_case(fake, providers, kind)
    assert provider.diff(created.id, created.outs, props).changes is False
    # Every managed field is in the matrix, so a new field cannot slip in unclassified.
    managed = {f.name for f in provider.kind.fields} - {"ssl_mode", "cdc_replication_slot"}
    assert managed <= set(changes), managed - set(changes)
    for field, (value, expected) in changes.items():
        news = dict(props, **{field: value})
        updates, replaces = provider.field_changes(created.outs, news)
        result = provider.diff(created.id, created.outs, news)
        assert result.changes is True, field
        if expected == "replace":
            assert (updates, replaces) == ([], [field]), field
            assert result.replaces == [field] and result.delete_before_replace is True
        else:
            assert (updates, replaces) == ([field], []), field
            assert not result.replaces


def test_unknown_values_during_preview_count_as_changes(
    fake: FakeAirbyte, providers: Providers
) -> None:
    provider, created, props = _matrix_case(fake, providers, "connection")
    result = provider.diff(created.id, created.outs, dict(props, source_id=UNKNOWN))
    assert result.replaces == ["source_id"]
    result = provider.diff(created.id, created.outs, dict(props, name=UNKNOWN))
    assert result.changes and not result.replaces


# -- drift --------------------------------------------------------------------------------------
def test_read_detects_drift_made_in_the_ui(fake: FakeAirbyte, providers: Providers) -> None:
    src, _, conn = providers
    made = create_all(fake, providers)
    s, c = made["source"], made["connection"]
    fake.edit("sources", s.id, **{"configuration.host": "someone-elses-db.example.com"})
    fake.edit("connections", c.id, schedule={"scheduleType": "manual"})
    fake.edit(
        "connections",
        c.id,
        **{"configurations.streams": fake.connections[c.id]["configurations"]["streams"][:2]},
    )

    refreshed = src.read(s.id, s.outs)
    assert refreshed.outs["host"] == "someone-elses-db.example.com"
    updates, replaces = src.field_changes(refreshed.outs, source_props(fake))
    assert (updates, replaces) == (["host"], [])

    c_read = conn.read(c.id, c.outs)
    c_props = connection_props(fake, s.id, made["destination"].id)
    updates, replaces = conn.field_changes(c_read.outs, c_props)
    assert sorted(updates) == ["cron_expression", "schedule_type", "streams"] and not replaces

    # `pulumi up` puts the declared state back
    src.update(s.id, refreshed.outs, source_props(fake))
    conn.update(c.id, c_read.outs, c_props)
    assert fake.sources[s.id]["configuration"]["host"] == source_props(fake)["host"]
    assert len(fake.connections[c.id]["configurations"]["streams"]) == len(STREAMS)
    assert fake.connections[c.id]["schedule"]["scheduleType"] == "cron"


def test_read_detects_a_destination_moved_back_to_airbyte_internal(
    fake: FakeAirbyte, providers: Providers
) -> None:
    dst = providers[1]
    d = dst.create(destination_props(fake))
    assert fake.destinations[d.id]["configuration"]["raw_data_schema"] == "POSTGRES_AIRBYTE"
    # The provider refuses to declare a destination without it.
    checked = dst.check({}, destination_props(fake, raw_data_schema=None))
    assert [f.property for f in checked.failures] == ["raw_data_schema"]
    # Someone clears "Raw Table Schema Name" in the UI: Airbyte falls back to airbyte_internal.
    del fake.destinations[d.id]["configuration"]["raw_data_schema"]
    refreshed = dst.read(d.id, d.outs)
    assert refreshed.outs["raw_data_schema"] is None
    assert dst.field_changes(refreshed.outs, destination_props(fake)) == (["raw_data_schema"], [])
    dst.update(d.id, refreshed.outs, destination_props(fake))
    assert fake.destinations[d.id]["configuration"]["raw_data_schema"] == "POSTGRES_AIRBYTE"


def test_read_of_a_deleted_resource_reports_it_gone(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src, dst, conn = providers
    made = create_all(fake, providers)
    del fake.sources[made["source"].id]
    del fake.destinations[made["destination"].id]
    assert src.read(made["source"].id, made["source"].outs).id == ""
    assert dst.read(made["destination"].id, made["destination"].outs).id == ""
    # a deleted connection stays visible as "deprecated"; that is gone too
    fake.edit("connections", made["connection"].id, status="deprecated", _deleted=True)
    assert conn.read(made["connection"].id, made["connection"].outs).id == ""


# -- idempotent create --------------------------------------------------------------------------
def test_create_that_timed_out_is_found_by_name_not_duplicated(
    fake: FakeAirbyte, settings: ApiSettings
) -> None:
    src = PostgresSourceProvider(ApiSettings(**{**settings.__dict__, "timeout_s": 0.3}))
    # Airbyte creates the source but answers too late: the client times out.
    fake.fail("POST", r"/v1/sources", 504, apply_first=True, stall_s=0.8)
    created = src.create(source_props(fake))
    assert list(fake.sources) == [created.id]
    assert len(fake.requests("POST", "/v1/sources")) == 1


def test_retried_create_after_a_failed_up_adopts_the_existing_resource(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    # The create lands, then every answer fails until the attempts run out.
    fake.fail("POST", r"/v1/sources", 502, apply_first=True)
    fake.fail("GET", r"/v1/sources", 503, times=10, skip=1)
    with pytest.raises(AirbyteError) as err:
        src.create(source_props(fake))
    assert "unavailable after 4 attempts" in str(err.value)
    assert len(fake.sources) == 1
    fake.faults.clear()
    # The next `pulumi up` runs create again: it finds the source by name.
    again = src.create(source_props(fake, host="moved.eu-west-3.rds.amazonaws.com"))
    assert list(fake.sources) == [again.id]
    assert fake.sources[again.id]["configuration"]["host"] == "moved.eu-west-3.rds.amazonaws.com"
    assert len(fake.requests("POST", "/v1/sources")) == 1


def test_create_refuses_to_guess_between_duplicates(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    first = src.create(source_props(fake))
    clone = dict(fake.sources[first.id], sourceId="dup-id")
    fake.sources["dup-id"] = clone
    with pytest.raises(AirbyteError) as err:
        src.create(source_props(fake))
    assert "2 resources with this name" in str(err.value) and "dup-id" in str(err.value)


def test_create_pages_through_the_workspace_listing(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    fake.page_size_cap = 2
    for i in range(4):
        src.create(source_props(fake, name=f"other-{i}"))
    target = src.create(source_props(fake))
    assert src.create(source_props(fake)).id == target.id
    assert len(fake.sources) == 5


# -- retries and errors -------------------------------------------------------------------------
def test_429_is_retried_then_succeeds(fake: FakeAirbyte, providers: Providers) -> None:
    src = providers[0]
    fake.fail("POST", r"/v1/sources", 429, times=2, retry_after="0")
    created = src.create(source_props(fake))
    assert len(fake.requests("POST", "/v1/sources")) == 3
    assert list(fake.sources) == [created.id]
    fake.fail("GET", r"/v1/sources/.+", 429, retry_after="0")
    assert src.read(created.id, created.outs).id == created.id


def test_500_gives_a_clear_error_after_the_retries(fake: FakeAirbyte, providers: Providers) -> None:
    src = providers[0]
    created = src.create(source_props(fake))
    fake.fail("GET", r"/v1/sources/.+", 500, times=99)
    with pytest.raises(AirbyteError) as err:
        src.read(created.id, created.outs)
    message = str(err.value)
    assert f"Airbyte source {created.id}: read" in message
    assert "HTTP 500" in message and "Internal Server Error: database timeout" in message
    assert "unavailable after 4 attempts" in message and "run `pulumi up` again" in message
    assert len(fake.requests("GET", r"/v1/sources/.+")) == 4


def test_4xx_names_the_resource_and_quotes_airbyte(fake: FakeAirbyte, providers: Providers) -> None:
    _, _, conn = providers
    made = create_all(fake, providers)
    bad = connection_props(
        fake, made["source"].id, made["destination"].id, cron_expression="0 0 17 * * * ? UTC extra"
    )
    with pytest.raises(AirbyteError) as err:
        conn.update(made["connection"].id, made["connection"].outs, bad)
    message = str(err.value)
    assert err.value.status == 400
    assert "Airbyte connection 'mdp-dev-postgres-to-snowflake'" in message
    assert "is not valid" in message and "we expect one of [6, 7]" in message
    assert "Nothing was changed" in message
    assert len(fake.requests("PATCH", r"/v1/connections/.+")) == 1  # a 4xx is not retried


def test_a_response_missing_a_required_field_is_a_clear_error(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    created = src.create(source_props(fake))
    fake.fail("GET", r"/v1/sources/.+", 200, omit="workspaceId")
    with pytest.raises(AirbyteError) as err:
        src.read(created.id, created.outs)
    assert f"Airbyte source {created.id}: read" in str(err.value)
    assert "cannot read" in str(err.value) and "workspaceId" in str(err.value)
    assert "pulumi refresh" in str(err.value)


def test_token_endpoint_outage_is_retried(fake: FakeAirbyte, providers: Providers) -> None:
    fake.fail("POST", r"/v1/applications/token", 503, times=2)
    created = providers[0].create(source_props(fake))
    assert created.id in fake.sources
    assert len(fake.requests("POST", "/v1/applications/token")) == 3


def test_bad_credentials_say_which_config_to_fix(fake: FakeAirbyte, settings: ApiSettings) -> None:
    src = PostgresSourceProvider(
        ApiSettings(**{**settings.__dict__, "client_secret": "wrong-secret-value"})
    )
    with pytest.raises(AirbyteError) as err:
        src.create(source_props(fake))
    assert "airbyte:clientSecret" in str(err.value)
    assert "wrong-secret-value" not in str(err.value)
    assert not fake.sources


def test_missing_credentials_fail_before_any_request(fake: FakeAirbyte) -> None:
    src = PostgresSourceProvider(ApiSettings(server_url=fake.url))
    with pytest.raises(AirbyteError) as err:
        src.create(source_props(fake))
    assert "pulumi config set --secret airbyte:clientSecret" in str(err.value)
    assert not fake.seen


# -- credentials from stack config ----------------------------------------------------------------
def test_configure_reads_client_credentials_from_stack_config(fake: FakeAirbyte) -> None:
    src = PostgresSourceProvider(ApiSettings(backoff_base_s=0.01))
    config = {
        "airbyte:serverUrl": fake.url,
        "airbyte:clientId": fake.client_id,
        "airbyte:clientSecret": fake.client_secret,
    }
    src.configure(ConfigureRequest(Config(config, "mdp")))
    created = src.create(source_props(fake))
    assert created.id in fake.sources
    assert fake.requests("POST", "/v1/applications/token")


def test_configure_accepts_a_bearer_token(fake: FakeAirbyte) -> None:
    fake.tokens.add("static-token-abc123")
    src = PostgresSourceProvider()
    src.configure(
        ConfigureRequest(
            Config(
                {"airbyte:serverUrl": fake.url, "airbyte:bearerAuth": "static-token-abc123"}, "mdp"
            )
        )
    )
    assert src.create(source_props(fake)).id in fake.sources
    assert not fake.requests("POST", "/v1/applications/token")


# -- secrets ------------------------------------------------------------------------------------
def test_secrets_never_reach_outputs_errors_or_logs(
    fake: FakeAirbyte, providers: Providers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src, dst, _ = providers
    fake.fail("POST", r"/v1/sources", 429, retry_after="0")
    made = create_all(fake, providers)
    outs = [made[k].outs for k in made]
    outs += [src.read(made["source"].id, made["source"].outs).outs]
    outs += [
        dst.update(
            made["destination"].id, made["destination"].outs, destination_props(fake, role="R2")
        ).outs
    ]
    for out in outs:
        assert_no_secret(out)
        assert set(out) & {"password", "ssh_key", "private_key"} == set()
    # the secrets did go to Airbyte, where they belong
    sent = " ".join(s.raw for s in fake.requests("POST", "/v1/(sources|destinations)"))
    assert DB_PASSWORD in sent and "SECRETsnowflakeKEYline1" in sent

    errors: list[AirbyteError] = []
    # Airbyte quotes the submitted configuration back in a validation error.
    fake.fail("PATCH", r"/v1/sources/.+", 400, echo_body=True)
    with pytest.raises(AirbyteError) as err:
        src.update(made["source"].id, made["source"].outs, source_props(fake, host="h2"))
    errors.append(err.value)
    assert "[secret]" in str(err.value) and "does not fulfill the specification" in str(err.value)
    fake.fail("PATCH", r"/v1/destinations/.+", 500, times=9, echo_body=True)
    with pytest.raises(AirbyteError) as err:
        dst.update(
            made["destination"].id, made["destination"].outs, destination_props(fake, host="h2")
        )
    errors.append(err.value)
    fake.fail("GET", r"/v1/sources/.+", 422, echo_body=True)
    with pytest.raises(AirbyteError) as err:
        src.read(made["source"].id, made["source"].outs)
    errors.append(err.value)
    for error in errors:
        assert_no_secret(str(error))
        # A traceback shows the cause, and the context unless suppressed: neither may be an
        # SDK error carrying the raw body, on any of the errors.
        shown = [error.__cause__] + ([] if error.__suppress_context__ else [error.__context__])
        for chained in shown:
            if chained is not None:
                assert_no_secret(str(chained))
                assert_no_secret(repr(chained))
    # The validation errors wrap an SDK error that quotes the body: it must be suppressed.
    assert errors[0].__suppress_context__ and errors[2].__suppress_context__

    assert_no_secret(caplog.text)
    assert "attempt 2 of 4" in caplog.text  # the retry was logged, redacted
    settings = src._settings
    assert settings is not None
    assert fake.client_secret not in repr(settings)


def test_values_the_sdk_model_rejects_fail_without_echoing_secrets(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    with pytest.raises(AirbyteError) as err:
        src.create(source_props(fake, tunnel_port=f"22 {SSH_KEY}"))
    assert "Nothing was sent" in str(err.value) and "tunnel_port" in str(err.value)
    # the SDK model's error would quote the value; ours names the field only
    assert_no_secret(str(err.value))
    assert "BEGIN RSA" not in str(err.value)
    assert not fake.requests("POST", "/v1/sources")


def test_redactor_catches_json_escaped_and_partial_keys() -> None:
    redact = Redactor([SSH_KEY, "short"])
    text = f"a {json.dumps(SSH_KEY)} b SECRETsshKEYline2QCx9T5fq2pZ4mB8v0hK3JdR7wY6nU1sLkE c"
    cleaned = redact(text)
    assert "SECRETsshKEY" not in cleaned and cleaned.count("[secret]") >= 2
    assert redact("short and sweet") == "[secret] and sweet"


def test_masked_values_from_airbyte_are_not_taken_as_secrets(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src = providers[0]
    created = src.create(source_props(fake))
    read = src.read(created.id, created.outs)
    assert MASK not in json.dumps(read.outs)


# -- validation and the SDK's finalizer ----------------------------------------------------------
def test_check_rejects_bad_inputs_with_named_properties(
    fake: FakeAirbyte, providers: Providers
) -> None:
    src, _, conn = providers
    failures = src.check(
        {}, source_props(fake, replication_method="cdc", ssl_mode="disable")
    ).failures
    assert {f.property for f in failures} == {"cdc_publication", "cdc_replication_slot", "ssl_mode"}
    failures = conn.check(
        {},
        connection_props(
            fake, "s", "d", schedule_type="hourly", non_breaking_schema_updates_behavior="yolo"
        ),
    ).failures
    assert {f.property for f in failures} == {
        "schedule_type",
        "non_breaking_schema_updates_behavior",
    }
    assert src.check({}, source_props(fake, host=UNKNOWN)).failures == []


def test_client_owns_its_http_clients_so_gc_never_runs_asyncio(settings: ApiSettings) -> None:
    closed: list[object] = []

    async def inside_a_running_loop() -> None:
        for _ in range(3):
            client = AirbyteClient(settings)
            cfg = client.sdk.sdk_configuration
            assert cfg.client_supplied and cfg.async_client_supplied
            closed.append(cfg.async_client)
            client.close()
            del client, cfg
            gc.collect()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(inside_a_running_loop())
        # the SDK finalizer left our async clients alone (it would have closed them)
        assert all(not c.is_closed for c in closed)  # type: ignore[attr-defined]
    finally:
        loop.close()


def _first_sync(fake: FakeAirbyte, settings: ApiSettings, connection_id: str) -> dict[str, Any]:
    from airbyte_api import api, models

    with AirbyteClient(settings) as c:
        started = c.sdk.jobs.create_job(
            request=models.JobCreateRequest(
                connection_id=connection_id, job_type=models.JobTypeEnum.SYNC
            )
        ).raw_response.json()
        job = fake.jobs[started["jobId"]]
        job.done.wait(5)
        for _ in range(3):  # the fake shows every job `running` once
            status = c.sdk.jobs.get_job(
                request=api.GetJobRequest(job_id=started["jobId"])
            ).raw_response.json()["status"]
    return {"status": status, "error": job.error}


def test_first_sync_fails_without_raw_data_schema_like_the_connector(
    fake: FakeAirbyte, providers: Providers, settings: ApiSettings
) -> None:
    src, dst, conn = providers
    s = src.create(source_props(fake))
    # What an Airbyte destination without "Raw Table Schema Name" looks like to the API.
    bare = dst.create(destination_props(fake, name="bare", raw_data_schema=None))
    assert "raw_data_schema" not in fake.destinations[bare.id]["configuration"]
    c = conn.create(connection_props(fake, s.id, bare.id, name="bare"))
    failed = _first_sync(fake, settings, c.id)
    assert failed["status"] == "failed"
    assert "Insufficient privileges to operate on database 'DEV_RAW'" in str(failed["error"])
    assert "raw_data_schema" in str(failed["error"])

    # The destination the provider declares syncs.
    d = dst.create(destination_props(fake))
    good = conn.create(connection_props(fake, s.id, d.id))
    assert _first_sync(fake, settings, good.id) == {"status": "succeeded", "error": None}


def test_a_rotated_snowflake_key_updates_the_destination_in_place(
    fake: FakeAirbyte, providers: Providers
) -> None:
    """Key rotation: the destination keeps its id and its connection, with the new key."""
    made = create_all(fake, providers)
    _, dst, _ = providers
    d, c = made["destination"], made["connection"]
    rotated_key = SNOWFLAKE_KEY.replace("line1", "rotated")
    rotated = destination_props(fake, private_key=rotated_key)
    diff = dst.diff(d.id, d.outs, rotated)
    assert diff.changes and not diff.replaces
    updated = dst.update(d.id, d.outs, rotated)
    creds = fake.destinations[d.id]["configuration"]["credentials"]
    assert creds["private_key"] == rotated_key
    assert set(fake.destinations) == {d.id}
    assert fake.connections[c.id]["destinationId"] == d.id
    # The state keeps a digest of the new key, never the key: the next diff is clean.
    assert rotated_key not in json.dumps(updated.outs)
    assert dst.diff(d.id, updated.outs, rotated).changes is False
