"""Creates in the emulator what the program declared, from its recorded inputs (never a second copy).

The program runs under Pulumi's mocks, which invent identifiers (`...:key/kms-key`,
`...:secret:name-AbCdEf`). AWS picks the real ones at create time; `Applied.ids` maps each declared
identifier to the emulator's, and `Applied.resolve` puts the emulator's into any value the program
computed from them (policies, user data), as the engine does when a resource's outputs resolve.
"""

from __future__ import annotations

import io
import json
import secrets
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra import outputs
from infra.mockrun import ProgramRun, Recorded
from rehearsal.emulator import Emulator

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PARAMETER = "aws:ssm/parameter:Parameter"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"
DB_INSTANCE = "aws:rds/instance:Instance"
INSTANCE = "aws:ec2/instance:Instance"


@dataclass(frozen=True)
class MasterSecret:
    """The RDS-managed master user secret, as RDS writes it: `{"username", "password"}`."""

    declared_arn: str
    arn: str
    username: str
    password: str
    db_instance: str


@dataclass
class Applied:
    """What the emulator holds now, and how declared identifiers map onto its own."""

    ids: dict[str, str] = field(default_factory=dict)
    created: list[tuple[str, str]] = field(default_factory=list)
    master_secrets: list[MasterSecret] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # logical name -> role ARN
    artifact: bytes = b""
    objects: list[str] = field(default_factory=list)  # the keys uploaded, in order

    def resolve(self, value: Any) -> Any:
        """`value` with every declared identifier replaced by the emulator's."""
        if isinstance(value, str):
            if value in self.ids:
                return self.ids[value]
            for old in sorted((k for k in self.ids if k.startswith("arn:")), key=len, reverse=True):
                if old in value:
                    value = value.replace(old, self.ids[old])
            return value
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def build_artifact(archive: Any) -> bytes:
    """The zip the engine uploads for a `pulumi.AssetArchive` of files, in the archive's order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, asset in archive.assets.items():
            if isinstance(asset, pulumi.FileAsset):
                zf.write(str(asset.path), name)
            elif isinstance(asset, pulumi.StringAsset):
                zf.writestr(name, asset.text)
            else:
                raise TypeError(f"artifact entry {name}: unsupported asset {type(asset).__name__}")
    return buffer.getvalue()


class Applier:
    """Creates the resources the hosts touch at run time, in dependency order."""

    def __init__(self, run: ProgramRun, emulator: Emulator) -> None:
        self.run = run
        self.emulator = emulator
        self.applied = Applied()

    def _client(self, service: str) -> Any:
        return self.emulator.client(service, self.emulator.admin)

    def _map(self, declared: Any, actual: str) -> None:
        if isinstance(declared, str) and declared and declared != actual:
            self.applied.ids[declared] = actual

    def apply(self) -> Applied:
        steps: list[tuple[str, Callable[[Recorded], None]]] = [
            (KEY, self._key),
            (ALIAS, self._alias),
            (BUCKET, self._bucket),
            (BUCKET_ENCRYPTION, self._bucket_encryption),
            (BUCKET_VERSIONING, self._bucket_versioning),
            (BUCKET_PUBLIC_ACCESS, self._bucket_public_access),
            (BUCKET_OBJECT, self._object),
            (PARAMETER, self._parameter),
            (SECRET, self._secret),
            (SECRET_VERSION, self._secret_version),
            (DB_INSTANCE, self._master_secret),
            # Last: the policies name the ARNs of everything above.
            (ROLE, self._role),
            (ROLE_POLICY, self._role_policy),
            (INSTANCE_PROFILE, self._instance_profile),
        ]
        for type_, create in steps:
            for resource in self.run.of_type(type_):
                create(resource)
                self.applied.created.append((type_, resource.name))
        return self.applied

    def _key(self, r: Recorded) -> None:
        args = r.plain
        created = self._client("kms").create_key(
            Description=args.get("description", ""), Policy=self.applied.resolve(args["policy"])
        )["KeyMetadata"]
        self._map(r.outputs.get("arn"), created["Arn"])
        self._map(r.outputs.get("keyId"), created["KeyId"])
        self._map(r.id, created["KeyId"])

    def _alias(self, r: Recorded) -> None:
        args = r.plain
        self._client("kms").create_alias(
            AliasName=args["name"], TargetKeyId=self.applied.resolve(args["targetKeyId"])
        )

    def _role(self, r: Recorded) -> None:
        args = r.plain
        name = str(r.outputs.get("name") or r.name)
        created = self._client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=args["assumeRolePolicy"]
        )["Role"]
        self._map(r.id, name)
        self._map(r.outputs.get("arn"), created["Arn"])
        self.applied.roles[r.name] = created["Arn"]

    def _role_policy(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        self._client("iam").put_role_policy(
            RoleName=args["role"], PolicyName=r.name, PolicyDocument=args["policy"]
        )

    def _instance_profile(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        name = str(r.outputs.get("name") or r.name)
        iam = self._client("iam")
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=args["role"])

    def _bucket(self, r: Recorded) -> None:
        name = str(r.outputs.get("bucket") or r.id)
        s3 = self._client("s3")
        if self.emulator.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.emulator.region}
            )

    def _bucket_encryption(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        rules = []
        for rule in args["rules"]:
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            by_default = {"SSEAlgorithm": default["sseAlgorithm"]}
            if default.get("kmsMasterKeyId"):
                by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
            rules.append(
                {
                    "ApplyServerSideEncryptionByDefault": by_default,
                    "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled")),
                }
            )
        self._client("s3").put_bucket_encryption(
            Bucket=args["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
        )

    def _bucket_versioning(self, r: Recorded) -> None:
        args = r.plain
        status = args["versioningConfiguration"]["status"]
        self._client("s3").put_bucket_versioning(
            Bucket=args["bucket"], VersioningConfiguration={"Status": status}
        )

    def _bucket_public_access(self, r: Recorded) -> None:
        args = r.plain
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        self._client("s3").put_public_access_block(
            Bucket=args["bucket"],
            PublicAccessBlockConfiguration={k[0].upper() + k[1:]: bool(args.get(k)) for k in keys},
        )

    def _object(self, r: Recorded) -> None:
        args = r.inputs
        # An archive (the code artifact, MWAA's plugins.zip) or a text body (MWAA's DAG loader,
        # requirements and startup script).
        body = (
            build_artifact(args["source"])
            if args.get("source") is not None
            else str(args["content"]).encode()
        )
        extra: dict[str, str] = {}
        if args.get("serverSideEncryption"):
            extra["ServerSideEncryption"] = args["serverSideEncryption"]
        if args.get("kmsKeyId"):
            extra["SSEKMSKeyId"] = self.applied.resolve(args["kmsKeyId"])
        put = self._client("s3").put_object(
            Bucket=args["bucket"], Key=args["key"], Body=body, **extra
        )
        # A versioned bucket names the new version: what MWAA's object versions point at.
        if put.get("VersionId"):
            self._map(r.outputs.get("versionId"), str(put["VersionId"]))
        self.applied.objects.append(str(args["key"]))
        if args["key"] == self.run.outputs.get(outputs.ARTIFACT_KEY):
            self.applied.artifact = body

    def _parameter(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        self._client("ssm").put_parameter(
            Name=args["name"],
            Type=args.get("type", "String"),
            Value=str(args["value"]),
            Description=args.get("description", ""),
        )

    def _secret(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        extra = {"KmsKeyId": args["kmsKeyId"]} if args.get("kmsKeyId") else {}
        created = self._client("secretsmanager").create_secret(
            Name=args["name"], Description=args.get("description", ""), **extra
        )
        self._map(r.outputs.get("arn"), created["ARN"])
        self._map(r.id, created["ARN"])

    def _secret_version(self, r: Recorded) -> None:
        args = self.applied.resolve(r.plain)
        self._client("secretsmanager").put_secret_value(
            SecretId=args["secretId"], SecretString=args["secretString"]
        )

    def _master_secret(self, r: Recorded) -> None:
        """RDS's own secret for the master user: `rds!db-<uuid>`, JSON username and password."""
        args = self.applied.resolve(r.plain)
        if not args.get("manageMasterUserPassword"):
            return
        declared = r.outputs["masterUserSecrets"][0]["secretArn"]
        username = str(args["username"])
        password = secrets.token_urlsafe(24)
        extra = (
            {"KmsKeyId": args["masterUserSecretKmsKeyId"]}
            if args.get("masterUserSecretKmsKeyId")
            else {}
        )
        created = self._client("secretsmanager").create_secret(
            Name=f"rds!db-{uuid.uuid4()}",
            Description=f"Secret associated with primary RDS DB instance: {r.name}",
            SecretString=json.dumps({"username": username, "password": password}),
            **extra,
        )
        self._map(declared, created["ARN"])
        self.applied.master_secrets.append(
            MasterSecret(declared, created["ARN"], username, password, r.name)
        )


def apply(run: ProgramRun, emulator: Emulator) -> Applied:
    """Create in `emulator` the resources of `run` that the hosts touch at run time."""
    return Applier(run, emulator).apply()
