"""Runs the program with a Snowflake section and turns what it declared into policy-rule resources."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from infra import mockrun as harness
from infra.policies.rules import Context, Resource, Violation, evaluate

ACCOUNT_LOCATOR = "XY12345"
# Documentation addresses (RFC 5737) stand in for the Airflow host and an admin network.
DBT_CIDR = "203.0.113.10/32"


def snowflake_config(stack: str, **overrides: Any) -> dict[str, Any]:
    """The `mdp:snowflake` section a user sets, as the README documents it."""
    section: dict[str, Any] = {
        "organizationName": "EXAMPLEORG",
        "accountName": "MDP",
        "creditQuota": 20 if stack == "dev" else 60,
        "dbtAllowedCidrs": [DBT_CIDR],
    }
    if stack != "prod":
        section["namePrefix"] = f"{stack.upper()}_"
    section.update(overrides)
    return section


class SnowflakeMocks(harness.RecordingMocks):
    """Adds the Snowflake invoke the program makes to the shared mocks."""

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        # The mock monitor iterates the failures of a (result, failures) pair: return a dict.
        if args.token == "snowflake:index/getCurrentAccount:getCurrentAccount":
            self.calls.append((args.token, dict(args.args)))
            return {
                "account": ACCOUNT_LOCATOR,
                "region": "AWS_EU_WEST_3",
                "url": "https://exampleorg-mdp.snowflakecomputing.com",
                "id": ACCOUNT_LOCATOR,
            }
        return super().call(args)


@dataclass
class SnowflakeRun:
    """A program run, plus its resources as the policy rules see them."""

    run: harness.ProgramRun
    resources: list[Resource]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]


@contextmanager
def recording() -> Iterator[None]:
    saved = harness.RecordingMocks
    harness.RecordingMocks = SnowflakeMocks  # type: ignore[misc]
    try:
        yield
    finally:
        harness.RecordingMocks = saved  # type: ignore[misc]


def snowflake_violations(resources: Sequence[Resource], stack: str) -> list[Violation]:
    """What every Snowflake rule of the policy pack finds in one stack's resources."""
    found = evaluate(resources, Context(production=stack == "prod"))
    return [v for v in found if v.rule.startswith("snowflake-")]


def run_snowflake(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    drop: Sequence[str] = (),
    secrets: Mapping[str, str] | None = None,
    **section: Any,
) -> SnowflakeRun:
    """Run the program for `stack` with the Snowflake section set (and any other overrides)."""
    config = snowflake_config(stack, **section)
    for key in drop:
        config.pop(key)
    all_overrides = {"mdp:snowflake": config, **(overrides or {})}
    with recording():
        run = harness.run_program(stack, overrides=all_overrides, secrets=secrets)
    return SnowflakeRun(run, run.policy_resources(plain=False))


_CACHE: dict[str, SnowflakeRun] = {}


def cached_snowflake(stack: str) -> SnowflakeRun:
    if stack not in _CACHE:
        if stack == harness.PROD_EC2:
            _CACHE[stack] = run_snowflake("prod", {"mdp:aws.airflow.engine": "ec2"})
        else:
            _CACHE[stack] = run_snowflake(stack)
    return _CACHE[stack]


@pytest.fixture(scope="session")
def sf_dev() -> SnowflakeRun:
    return cached_snowflake("dev")


@pytest.fixture(scope="session")
def sf_prod() -> SnowflakeRun:
    return cached_snowflake("prod")


@pytest.fixture(params=["dev", harness.PROD_EC2], scope="session")
def sf_ec2_stack(request: pytest.FixtureRequest) -> SnowflakeRun:
    """Each stack with Snowflake and Airflow on the EC2 host (prod's engine set to ec2)."""
    return cached_snowflake(request.param)


@pytest.fixture(params=["dev", "prod"], scope="session")
def sf_stack(request: pytest.FixtureRequest) -> SnowflakeRun:
    return cached_snowflake(request.param)


def run_component(
    build: Callable[[], Mapping[str, Any] | None],
    resolved: dict[str, harness.Resolved] | None = None,
) -> list[harness.Recorded]:
    """Build Snowflake resources directly (outside the stack program) under the same mocks.

    `build` may return outputs by name; they are resolved into `resolved` within the run.
    """
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.config import set_all_config

    set_all_config({}, [])
    mocks = SnowflakeMocks()
    monitor = harness.RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="mdp", stack="dev", preview=False, monitor=monitor)

    async def program() -> None:
        for name, value in (build() or {}).items():
            out = pulumi.Output.from_input(value)
            if resolved is not None:
                resolved[name] = harness.Resolved(
                    await out.future(with_unknowns=True),
                    await out.is_secret(),
                    await out.is_known(),
                )

    pulumi_settings.SETTINGS.rpc_manager.clear()
    harness.sync_run(program)
    return list(monitor.recorded)


def current_key(run: harness.ProgramRun, user: str) -> harness.Recorded:
    """The key `user` (dbt, airbyte, dashboard) signs in with: the generation its secret names."""
    version = run.named(f"snowflake-{user}-svc-key-secret-version")
    generation = json.loads(version.plain["secretString"])["key_generation"]
    return run.named(f"snowflake-{user}-svc-key-{generation}")
