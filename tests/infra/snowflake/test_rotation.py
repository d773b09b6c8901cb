"""Service-user keys rotate through Snowflake's two slots: new key in the free slot, every consumer switched, the old key kept until the next rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import date, timedelta
from typing import Any

import pytest

from infra import mockrun as harness
from infra.config import build_stack_config
from infra.config_errors import ConfigError
from infra.policies.rules import Context, Resource, evaluate
from infra.policies.rules import snowflake as rules
from infra.snowflake import rotation
from tests.infra.airbyte.conftest import raw_inputs
from tests.infra.snowflake.conftest import recording, snowflake_config

WORKSPACE = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
DESTINATION = "pulumi-python:dynamic/airbyte:SnowflakeDestination"
# Generation 2 (100 days after the epoch) and, one rotation period later, generation 3.
BEFORE = rotation.ROTATION_EPOCH + timedelta(days=100)
AFTER = BEFORE + timedelta(days=rotation.DEFAULT_ROTATION_DAYS)
USERS = {"airbyte": "DEV_AIRBYTE_SVC", "dbt": "DEV_DBT_SVC", "dashboard": "DEV_DASHBOARD_SVC"}


def _program(on: date, **snowflake: Any) -> harness.ProgramRun:
    """The dev stack with Snowflake and Airbyte, as the program declares it on day `on`."""
    mp = pytest.MonkeyPatch()
    mp.setattr(rotation, "today", lambda: on)
    overrides = {
        "mdp:snowflake": snowflake_config("dev", **snowflake),
        "mdp:airbyte": {"workspaceId": WORKSPACE},
        "airbyte:clientId": "mock-client-id",
    }
    try:
        with recording(), raw_inputs() as raw:
            run = harness.run_program(
                "dev", overrides=overrides, secrets={"airbyte:clientSecret": "mock-secret"}
            )
    finally:
        mp.undo()
    # The destination's inputs as sent, secret wrappers included.
    run.resources = [
        dataclasses.replace(r, inputs=raw[r.name]) if r.type == DESTINATION else r
        for r in run.resources
    ]
    return run


@pytest.fixture(scope="module")
def before() -> harness.ProgramRun:
    return _program(BEFORE)


@pytest.fixture(scope="module")
def after() -> harness.ProgramRun:
    return _program(AFTER)


def _user(run: harness.ProgramRun, user: str) -> dict[str, Any]:
    (found,) = [
        r.inputs for r in run.of_type(rules.SERVICE_USER) if r.inputs["name"] == USERS[user]
    ]
    return found


def _key(run: harness.ProgramRun, user: str, generation: int) -> harness.Recorded:
    return run.named(f"snowflake-{user}-svc-key-{generation}")


def _public(key: harness.Recorded) -> str:
    return "".join(line for line in key.outputs["publicKeyPem"].splitlines() if "-----" not in line)


def _private(key: harness.Recorded) -> str:
    return str(key.outputs["privateKeyPemPkcs8"])


def _secret_payload(run: harness.ProgramRun, user: str) -> dict[str, Any]:
    version = run.named(f"snowflake-{user}-svc-key-secret-version")
    return dict(json.loads(version.plain["secretString"]))


def _consumers(run: harness.ProgramRun) -> dict[str, str]:
    """The private key each consumer signs in with: Airflow's dbt connection, the dashboard's
    secret, and Airbyte's destination."""
    conn = json.loads(run.named("airflow-connection-snowflake-dbt-value").plain["secretString"])
    (destination,) = run.of_type(DESTINATION)
    return {
        "dbt": base64.b64decode(conn["extra"]["private_key_content"]).decode(),
        "dashboard": _secret_payload(run, "dashboard")["private_key"],
        "airbyte": destination.inputs["private_key"]["value"],
    }


def test_generations_follow_the_rotation_period_and_manual_rotations() -> None:
    epoch = rotation.ROTATION_EPOCH
    assert rotation.key_generation(90, on=epoch) == 1
    assert rotation.key_generation(90, on=epoch + timedelta(days=89)) == 1
    assert rotation.key_generation(90, on=epoch + timedelta(days=90)) == 2
    assert rotation.key_generation(30, manual=2, on=epoch + timedelta(days=61)) == 5
    # Each new generation lands in the slot of the one two back; the previous one stays put.
    for g in range(2, 8):
        assert set(rotation.slots(g)) == {g, g - 1}
        assert rotation.slots(g + 1).index(g) == rotation.slots(g).index(g)


@pytest.mark.parametrize("user", sorted(USERS))
def test_both_slots_hold_a_key_and_the_consumers_use_the_current_one(
    before: harness.ProgramRun, user: str
) -> None:
    inputs = _user(before, user)
    assert inputs["rsaPublicKey"] == _public(_key(before, user, 2))
    assert inputs["rsaPublicKey2"] == _public(_key(before, user, 1))
    assert _secret_payload(before, user)["private_key"] == _private(_key(before, user, 2))
    assert _secret_payload(before, user)["key_generation"] == 2
    assert _consumers(before)[user] == _private(_key(before, user, 2))


@pytest.mark.parametrize("user", sorted(USERS))
def test_a_rotation_fills_the_free_slot_switches_every_consumer_and_keeps_the_old_key(
    before: harness.ProgramRun, after: harness.ProgramRun, user: str
) -> None:
    old, new = _user(before, user), _user(after, user)
    # The key every consumer used stays in its slot through the rotation: nobody is signed out.
    assert new["rsaPublicKey"] == old["rsaPublicKey"] == _public(_key(after, user, 2))
    # The new key went into the slot of the key before it, which no consumer used.
    assert new["rsaPublicKey2"] == _public(_key(after, user, 3)) != old["rsaPublicKey2"]
    # The secret and the consumers switched to the new key.
    assert _secret_payload(after, user)["private_key"] == _private(_key(after, user, 3))
    assert _consumers(after)[user] == _private(_key(after, user, 3))
    # Generation 1's key is gone: the next rotation removed it.
    assert not [r for r in after.resources if r.name == f"snowflake-{user}-svc-key-1"]


def test_a_manual_rotation_rotates_that_user_only(before: harness.ProgramRun) -> None:
    rotated = _program(BEFORE, keyRotations={"DBT": 1})
    assert _secret_payload(rotated, "dbt")["key_generation"] == 3
    assert _consumers(rotated)["dbt"] == _private(_key(rotated, "dbt", 3))
    for user in ("airbyte", "dashboard"):
        assert _user(rotated, user) == _user(before, user)
        assert _secret_payload(rotated, user)["key_generation"] == 2


def _config_error(**snowflake: Any) -> ConfigError:
    raw = {**harness.stack_config("dev"), "mdp:snowflake": snowflake_config("dev", **snowflake)}
    with pytest.raises(ConfigError) as caught:
        build_stack_config("dev", lambda ns, key: raw.get(f"{ns}:{key}"))
    return caught.value


@pytest.mark.parametrize("days", [0, 400, "often"])
def test_a_bad_rotation_period_names_the_key_and_the_fix(days: Any) -> None:
    message = str(_config_error(keyRotationDays=days))
    assert "mdp:snowflake.keyRotationDays" in message
    assert "pulumi config set" in message


def test_a_manual_rotation_of_an_unknown_user_is_refused() -> None:
    message = str(_config_error(keyRotations={"ADMIN": 1}))
    assert "keyRotations" in message and "AIRBYTE, DBT, DASHBOARD" in message


def test_the_rotation_rule_catches_a_user_without_its_second_slot(
    before: harness.ProgramRun,
) -> None:
    users = [r for r in before.policy_resources() if r.type == rules.SERVICE_USER]
    assert users and not [
        v
        for v in evaluate(users, Context(production=True))
        if v.rule == "snowflake-service-users-rotate-keys"
    ]
    one_slot = Resource(
        rules.SERVICE_USER,
        "one-slot",
        {k: v for k, v in users[0].props.items() if k != "rsaPublicKey2"},
    )
    found = evaluate([one_slot], Context(production=True))
    assert [v.rule for v in found if v.rule == "snowflake-service-users-rotate-keys"] == [
        "snowflake-service-users-rotate-keys"
    ]
