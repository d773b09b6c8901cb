"""The providers as Pulumi's dynamic-provider host runs them: pickled, configured from stack config, over gRPC messages."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2 as proto
from pulumi.runtime.proto import provider_pb2_grpc

from infra.airbyte.provider import PostgresSourceProvider
from infra.mockrun import REPO_ROOT
from rehearsal.fake_airbyte import FakeAirbyte
from tests.infra.airbyte.conftest import SECRET_FRAGMENTS, source_props

URN = "urn:pulumi:dev::mdp::mdp:airbyte:AirbyteCloud$pulumi-python:dynamic/airbyte:PostgresSource::airbyte-source"


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct))


@pytest.fixture
def servicer(fake: FakeAirbyte) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """Pulumi's own dynamic-provider host in a child process, as the engine starts it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PULUMI_PROJECT": "mdp"},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        # The engine sends the whole stack config; secrets arrive decrypted.
        config = {
            "airbyte:serverUrl": fake.url,
            "airbyte:clientId": fake.client_id,
            "airbyte:clientSecret": fake.client_secret,
            "mdp:airbyte": '{"workspaceId": "x"}',
        }
        stub.Configure(proto.ConfigureRequest(args=to_struct(config)), timeout=30)
        yield stub
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_lifecycle_through_the_dynamic_provider_host(
    fake: FakeAirbyte, servicer: provider_pb2_grpc.ResourceProviderStub
) -> None:
    # As the program sends it: no credentials inside the pickled provider.
    provider = serialize_provider(PostgresSourceProvider())
    inputs = source_props(fake) | {"__provider": provider}
    inputs = {k: v for k, v in inputs.items() if v is not None}

    checked = servicer.Check(
        proto.CheckRequest(urn=URN, olds=to_struct({}), news=to_struct(inputs))
    )
    assert not checked.failures

    created = servicer.Create(proto.CreateRequest(urn=URN, properties=checked.inputs))
    assert created.id in fake.sources
    outs = from_struct(created.properties)
    assert outs["source_id"] == created.id and outs["host"] == inputs["host"]
    state = str({k: v for k, v in outs.items() if k != "__provider"})
    assert all(fragment not in state for fragment in SECRET_FRAGMENTS)

    diff = servicer.Diff(
        proto.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=to_struct(inputs)),
    )
    assert diff.changes == proto.DiffResponse.DIFF_NONE

    moved = inputs | {"host": "moved.eu-west-3.rds.amazonaws.com", "database": "app2"}
    diff = servicer.Diff(
        proto.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=to_struct(moved)),
    )
    assert diff.changes == proto.DiffResponse.DIFF_SOME
    assert list(diff.replaces) == ["database"] and diff.deleteBeforeReplace

    renamed = inputs | {"host": "moved.eu-west-3.rds.amazonaws.com"}
    updated = servicer.Update(
        proto.UpdateRequest(
            id=created.id, urn=URN, olds=created.properties, news=to_struct(renamed)
        ),
    )
    assert fake.sources[created.id]["configuration"]["host"] == "moved.eu-west-3.rds.amazonaws.com"

    read = servicer.Read(proto.ReadRequest(id=created.id, urn=URN, properties=updated.properties))
    assert read.id == created.id
    assert from_struct(read.properties)["host"] == "moved.eu-west-3.rds.amazonaws.com"

    servicer.Delete(proto.DeleteRequest(id=created.id, urn=URN, properties=updated.properties))
    assert not fake.sources
    gone = servicer.Read(proto.ReadRequest(id=created.id, urn=URN, properties=updated.properties))
    assert gone.id == ""


def test_errors_reach_the_engine_named_and_redacted(
    fake: FakeAirbyte, servicer: provider_pb2_grpc.ResourceProviderStub
) -> None:
    provider = serialize_provider(PostgresSourceProvider())
    inputs = {
        k: v for k, v in (source_props(fake) | {"__provider": provider}).items() if v is not None
    }
    fake.fail("POST", r"/v1/sources", 400, echo_body=True)
    with pytest.raises(grpc.RpcError) as err:
        servicer.Create(proto.CreateRequest(urn=URN, properties=to_struct(inputs)))
    details = err.value.details()  # type: ignore[attr-defined]
    assert "Airbyte source 'mdp-dev-postgres'" in details and "HTTP 400" in details
    assert all(fragment not in details for fragment in SECRET_FRAGMENTS)
    assert "Traceback" in details and "SDKError" not in details  # no chained SDK error body
