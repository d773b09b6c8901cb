"""Runs the Pulumi program under Pulumi's mocks: what `mdp plan` shows and what the infra tests inspect."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import runpy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config

from infra.policies.rules import Resource
from infra.policies.rules import walk_strings as walk_strings

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "stacks" / "__main__.py"
PROJECT = "mdp"
ACCOUNT_ID = "123456789012"
MOCK_AMI = "ami-0mock0000000000001"
MOCK_SNOWFLAKE_LOCATOR = "XY12345"
# The region of the running stack, read from its `aws:region` config.
_REGION = ["us-east-1"]
_LAST_DECLARED: list[list[Recorded]] = [[]]
_PROVIDER = "pulumi:providers:"


@dataclass(frozen=True)
class Recorded:
    """One resource the program declared: its type token, logical name, inputs and options."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    urn: str
    parent: str
    custom: bool
    protect: bool
    ignore_changes: tuple[str, ...]
    additional_secret_outputs: tuple[str, ...]
    delete_before_replace: bool
    retain_on_delete: bool
    # Top-level inputs the program passed as secrets.
    secret_inputs: tuple[str, ...] = ()
    # The URN of the explicit provider managing it, if any.
    provider: str = ""

    @property
    def props(self) -> dict[str, Any]:
        """Inputs as a policy pack sees them (camelCase names)."""
        return self.inputs

    @property
    def plain(self) -> dict[str, Any]:
        """Inputs with secret values unwrapped (`inputs` keeps the engine's secret wrappers)."""
        return dict(_unwrap_secrets(self.inputs))


@dataclass
class ProgramRun:
    """What one run of the program declared and exported."""

    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    config: dict[str, str]
    secret_config: dict[str, str] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Recorded:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        assert len(found) == 1, (
            f"expected one {type_} named *{name_contains}*, got {[r.name for r in found]}"
        )
        return found[0]

    def named(self, name: str) -> Recorded:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, got {len(found)}"
        return found[0]

    def children_of(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]

    def is_secret(self, output_name: str) -> bool:
        return output_name in self.secret_outputs

    def policy_resources(self, plain: bool = True) -> list[Resource]:
        """The declared resources as the policy pack sees them: props, protect and provider role.

        `plain` unwraps secret values, as the engine does before the pack sees them.
        """
        roles = {
            r.urn: r.inputs.get("role") for r in self.resources if r.type.startswith(_PROVIDER)
        }
        return [
            Resource(
                type=r.type,
                name=r.name,
                props=r.plain if plain else r.inputs,
                protect=r.protect,
                provider_role=roles.get(r.provider),
            )
            for r in self.resources
        ]


def _arn(service: str, resource: str, region: str | None = None) -> str:
    return f"arn:aws:{service}:{region or _REGION[0]}:{ACCOUNT_ID}:{resource}"


def _fake_secret(name: str, kind: str) -> str:
    """A recognisable, per-resource fake secret, so tests can search for leaks of it."""
    digest = hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:24]
    return f"MOCKSECRET-{kind}-{digest}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Computes plausible provider outputs per resource type, and answers the invokes the program uses."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        name, typ = args.name, args.typ
        state = dict(args.inputs)
        rid = f"{name}-id"
        computed = computed_outputs(typ, name, state)
        for key, value in computed.items():
            state.setdefault(key, value)
        rid = str(computed.get("__id", rid))
        state.pop("__id", None)
        self.states[f"{typ}::{name}"] = state
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args.get("name"), "value": MOCK_AMI, "type": "String"}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": _arn("iam", "user/ci"), "userId": "AIDA"}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": _REGION[0], "region": _REGION[0]}, []
        if args.token == "snowflake:index/getCurrentAccount:getCurrentAccount":
            return {
                "account": MOCK_SNOWFLAKE_LOCATOR,
                "region": "AWS_US_EAST_1",
                "url": "https://exampleorg-mdp.snowflakecomputing.com",
                "id": MOCK_SNOWFLAKE_LOCATOR,
            }, []
        return {}, []


# The Airbyte resources of the dynamic provider (infra/airbyte) and their id output.
_AIRBYTE_IDS = {
    "pulumi-python:dynamic/airbyte:PostgresSource": "source_id",
    "pulumi-python:dynamic/airbyte:SnowflakeDestination": "destination_id",
    "pulumi-python:dynamic/airbyte:Connection": "connection_id",
}


def computed_outputs(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the provider would fill in after create, for the types whose outputs the program reads."""
    out: dict[str, Any] = {"arn": _arn(typ.split(":")[1].split("/")[0], name)}
    if typ == "aws:rds/instance:Instance":
        host = f"{name}.abcdefghijkl.{_REGION[0]}.rds.amazonaws.com"
        out |= {
            "address": host,
            "endpoint": f"{host}:5432",
            "port": inputs.get("port", 5432),
            "masterUserSecrets": [
                {
                    "secretArn": _arn("secretsmanager", f"secret:rds!db-{name}-AbCdEf"),
                    "secretStatus": "active",
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""),
                }
            ],
        }
    elif typ == "aws:ec2/eip:Eip":
        octet = int(hashlib.sha256(name.encode()).hexdigest()[:2], 16) % 250 + 1
        out |= {
            "publicIp": f"198.51.100.{octet}",
            "publicDns": f"ec2-198-51-100-{octet}.compute-1.amazonaws.com",
        }
    elif typ == "aws:ec2/instance:Instance":
        out |= {"privateIp": "10.0.0.10", "publicIp": "", "primaryNetworkInterfaceId": "eni-1"}
    elif typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        bucket = inputs.get("bucket") or f"{name}-abc123"
        out |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket, "__id": bucket}
    elif typ == "aws:s3/bucketObjectv2:BucketObjectv2":
        # A versioned bucket gives every new content a new version id.
        body = json.dumps(inputs, sort_keys=True, default=str)
        out |= {"versionId": hashlib.sha256(body.encode()).hexdigest()[:32]}
    elif typ == "aws:mwaa/environment:Environment":
        env = inputs.get("name", name)
        out |= {
            "arn": _arn("airflow", f"environment/{env}"),
            "webserverUrl": f"{hashlib.sha256(env.encode()).hexdigest()[:12]}-vpce.c2.airflow.amazonaws.com",
        }
    elif typ in _AIRBYTE_IDS:
        # The provider's create answers with the id Airbyte gave the resource: a UUID.
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mdp-mock/{typ}/{name}"))
        out |= {_AIRBYTE_IDS[typ]: rid, "__id": rid}
    elif typ == "aws:kms/key:Key":
        out |= {"keyId": f"{name}-key-id", "arn": _arn("kms", f"key/{name}")}
    elif typ == "aws:sns/topic:Topic":
        out |= {"arn": _arn("sns", inputs.get("name", name))}
    elif typ == "aws:secretsmanager/secret:Secret":
        out |= {"arn": _arn("secretsmanager", f"secret:{inputs.get('name', name)}-AbCdEf")}
    elif typ == "aws:iam/role:Role":
        out |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", "name": name}
    elif typ == "aws:iam/instanceProfile:InstanceProfile":
        out |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{name}", "name": name}
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        out |= {"arn": _arn("logs", f"log-group:{inputs.get('name', name)}")}
    elif typ == "aws:ssm/parameter:Parameter":
        out |= {"arn": _arn("ssm", f"parameter{inputs.get('name', name)}")}
    elif typ == "random:index/randomId:RandomId":
        out |= {"hex": hashlib.sha256(name.encode()).hexdigest()[:8], "b64Url": "bW9jaw"}
    elif typ == "random:index/randomPassword:RandomPassword":
        out |= {"result": _fake_secret(name, "password"), "bcryptHash": "$2a$mock"}
    elif typ == "tls:index/privateKey:PrivateKey":
        out |= {
            "privateKeyPem": "-----"
            + "BEGIN PRIVATE KEY-----\n"
            + _fake_secret(name, "pem")
            + "\n-----END PRIVATE KEY-----\n",
            "privateKeyOpenssh": _fake_secret(name, "openssh"),
            # Marked as PKCS#8 like the provider's, so what checks for a key (the dashboard's
            # key script in `mdp rehearse`) finds one; on one line, so JSON keeps it verbatim.
            "privateKeyPemPkcs8": "-----"
            + "BEGIN PRIVATE KEY-----"
            + _fake_secret(name, "pkcs8")
            + "-----END PRIVATE KEY-----",
            "publicKeyOpenssh": f"ssh-rsa AAAAMOCK{name} ",
            "publicKeyPem": f"-----BEGIN PUBLIC KEY-----\nMOCK{name}\n-----END PUBLIC KEY-----\n",
            "publicKeyFingerprintMd5": "00:11",
            "publicKeyFingerprintSha256": "SHA256:mock",
        }
    return out


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the resource options the Mocks API does not pass on (protect, parent, ignoreChanges...)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Recorded] = []
        self._recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        state = self._recorder.states.get(f"{request.type}::{request.name}", {})
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
        self.recorded.append(
            Recorded(
                type=request.type,
                name=request.name,
                inputs=_plain(inputs),
                outputs=_plain(state),
                id=response.id,
                urn=response.urn,
                parent=request.parent,
                custom=bool(request.custom),
                protect=bool(request.protect),
                ignore_changes=tuple(request.ignoreChanges),
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                delete_before_replace=bool(request.deleteBeforeReplace),
                retain_on_delete=bool(request.retainOnDelete),
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                secret_inputs=tuple(
                    sorted(
                        k
                        for k, v in inputs.items()
                        if isinstance(v, dict) and v.get(_SIG_KEY) == _SECRET_SIG
                    )
                ),
            )
        )
        return response


_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def _plain(value: Any) -> Any:
    """Deserialised inputs may hold unknowns or secret wrappers; keep plain JSON-like values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    """Whether a recorded input value is wrapped as a secret by the engine."""
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def stack_config(stack: str) -> dict[str, Any]:
    """The committed `Pulumi.<stack>.yaml` config block, values as YAML decoded them."""
    data = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    return dict(data.get("config") or {})


def _set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `ns:key.sub.leaf` inside structured config; a value of `DELETE` removes the key."""
    top, _, rest = dotted.partition(".")
    if not rest:
        if value is DELETE:
            config.pop(top, None)
        else:
            config[top] = value
        return
    node = config.setdefault(top, {})
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


DELETE = object()
"""Pass as an override value to remove a config key."""


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run `stacks/__main__.py` for `stack` under mocks, with its committed config plus `overrides`.

    `overrides` maps `namespace:key[.path]` to a value (or `DELETE`); `secrets` maps full keys
    such as `mdp:airbyteClientSecret` to secret config values.
    """
    config = copy.deepcopy(stack_config(stack))
    for key, value in (overrides or {}).items():
        _set_path(config, key, value)
    encoded = {k: _encode(v) for k, v in config.items()}
    for key, value in (secrets or {}).items():
        encoded[key] = value
    set_all_config(encoded, list((secrets or {}).keys()))
    _REGION[0] = str(config.get("aws:region") or "us-east-1")

    _ensure_event_loop()
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    # A fresh root Stack per run, so exports of one run never leak into the next.
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    root = pulumi_settings.get_root_resource()
    assert root is not None

    collected: dict[str, Any] = {}
    secret_names: set[str] = set()

    async def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        exported = dict(root.outputs)  # type: ignore[attr-defined]
        for name, value in exported.items():
            out = pulumi.Output.from_input(value)
            collected[name] = await out.future(with_unknowns=True)
            if await out.is_secret():
                secret_names.add(name)

    pulumi_settings.SETTINGS.rpc_manager.clear()
    _LAST_DECLARED[0] = monitor.recorded
    sync_run(program)
    return ProgramRun(
        stack=stack,
        resources=list(monitor.recorded),
        outputs=collected,
        secret_outputs=frozenset(secret_names),
        config=encoded,
        secret_config=dict(secrets or {}),
    )


def _ensure_event_loop() -> None:
    """Pulumi's runtime runs on this thread's event loop; an earlier `asyncio.run` leaves none."""
    try:
        if not asyncio.get_event_loop().is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def sync_run(program: Callable[[], Any]) -> None:
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(run_pulumi_func(program))


@dataclass(frozen=True)
class Resolved:
    value: Any
    is_secret: bool
    is_known: bool


def resolve(output: Any) -> Resolved:
    """Resolve an Output (or plain value) outside a program run: its value, secretness and knownness."""
    out = pulumi.Output.from_input(output)

    async def go() -> Resolved:
        value = await out.future(with_unknowns=True)
        return Resolved(value, await out.is_secret(), await out.is_known())

    from pulumi.runtime.sync_await import _sync_await

    return _sync_await(go())


def last_declared() -> list[Recorded]:
    """The resources the most recent run declared, also when it failed (for example on bad config)."""
    return list(_LAST_DECLARED[0])


_CACHE: dict[str, ProgramRun] = {}
# The prod stack with Airflow on the EC2 host instead of MWAA: the other engine's prod shape.
PROD_EC2 = "prod-ec2"
_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    PROD_EC2: ("prod", {"mdp:aws.airflow.engine": "ec2"}),
}


def cached_run(stack: str) -> ProgramRun:
    """The committed config of `stack` (or of a variant such as PROD_EC2), run once per session."""
    if stack not in _CACHE:
        base, overrides = _VARIANTS.get(stack, (stack, {}))
        _CACHE[stack] = run_program(base, overrides)
    return _CACHE[stack]
