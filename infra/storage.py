"""The stack's S3 buckets: code artifacts for the hosts, Parquet exports, and their access logs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.component import Component
from infra.iam import policy_document
from infra.sections import StackName

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the hosts run: the generator and loader, the DAGs and what they import (the dbt project,
# the exports, the dashboard, and core/ under all of them), with the lock file.
ARTIFACT_DIRS: tuple[str, ...] = (
    "core",
    "mdp",
    "source_generator",
    "ingestion",
    "orchestration",
    "transform",
    "exports",
    "dashboard",
)
ARTIFACT_FILES: tuple[str, ...] = ("pyproject.toml", "uv.lock")
_SKIP_PARTS = {"__pycache__", ".venv", "target", "dbt_packages", "logs", ".local", ".pytest_cache"}


@dataclass(frozen=True)
class StorageArgs:
    stack: StackName
    kms_key_arn: pulumi.Input[str]
    force_destroy: bool
    protect: bool
    source_root: Path = REPO_ROOT
    # MWAA's source bucket (dags/, plugins.zip, requirements.txt, startup script), when it runs.
    mwaa_source: bool = False


def artifact_files(root: Path) -> list[Path]:
    """Files that go into the artifact, in a stable order."""
    files = [root / f for f in ARTIFACT_FILES if (root / f).is_file()]
    for folder in ARTIFACT_DIRS:
        base = root / folder
        if not base.is_dir():
            continue
        files += sorted(
            p
            for p in base.rglob("*")
            if p.is_file()
            and not _SKIP_PARTS.intersection(p.relative_to(root).parts)
            and p.suffix != ".pyc"
        )
    return files


def artifact_digest(root: Path, files: Iterable[Path]) -> str:
    """Content hash of the artifact: a new key per code change, the same key when nothing changed."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class Storage(Component[StorageArgs]):
    """Private, encrypted, versioned buckets with TLS-only policies and access logging."""

    TYPE = "mdp:storage:Storage"

    artifact_bucket: pulumi.Output[str]
    artifact_bucket_arn: pulumi.Output[str]
    artifact_key: str
    artifact_parameter_name: str
    artifact_parameter_arn: pulumi.Output[str]
    exports_bucket: pulumi.Output[str]
    exports_bucket_arn: pulumi.Output[str]
    mwaa_source_bucket: pulumi.Output[str] | None = None
    mwaa_source_bucket_arn: pulumi.Output[str] | None = None

    def _declare(self, name: str, args: StorageArgs) -> Mapping[str, Any]:
        logs = self._bucket("access-logs", kms=False, log_to=None)
        artifacts = self._bucket("artifacts", kms=True, log_to=logs)
        exports = self._bucket("exports", kms=True, log_to=logs)
        self._create_artifact(artifacts)
        if args.mwaa_source:
            # MWAA takes only a bucket whose name starts with "airflow-".
            source = self._bucket("mwaa-source", kms=True, log_to=logs, prefix="airflow-")
            self.mwaa_source_bucket = source.bucket
            self.mwaa_source_bucket_arn = source.arn
        self.artifact_bucket = artifacts.bucket
        self.artifact_bucket_arn = artifacts.arn
        self.exports_bucket = exports.bucket
        self.exports_bucket_arn = exports.arn
        return {
            "artifactBucket": self.artifact_bucket,
            "artifactKey": self.artifact_key,
            "exportsBucket": self.exports_bucket,
            "exportsBucketArn": self.exports_bucket_arn,
        }

    def _bucket(
        self, suffix: str, kms: bool, log_to: aws.s3.Bucket | None, prefix: str = ""
    ) -> aws.s3.Bucket:
        name, args = self._name, self._args
        opts = pulumi.ResourceOptions(parent=self, protect=args.protect)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-{suffix}",
            bucket_prefix=f"{prefix}mdp-{args.stack}-{suffix}-",
            force_destroy=args.force_destroy,
            opts=opts,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-{suffix}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-{suffix}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        # Server access logs can only be delivered to an SSE-S3 bucket, so the log bucket skips KMS.
        default = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
            )
            if kms
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{suffix}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=kms
                )
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-{suffix}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-{suffix}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=90
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-{suffix}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: _tls_only_policy(arn, logs_bucket=log_to is None)),
            opts=child,
        )
        if log_to is not None:
            aws.s3.BucketLogging(
                f"{name}-{suffix}-logging",
                bucket=bucket.id,
                target_bucket=log_to.id,
                target_prefix=f"{suffix}/",
                opts=child,
            )
        return bucket

    def _create_artifact(self, bucket: aws.s3.Bucket) -> None:
        root = self._args.source_root
        files = artifact_files(root)
        digest = artifact_digest(root, files)
        self.artifact_key = f"artifacts/mdp-{digest}.zip"
        archive = pulumi.AssetArchive(
            {p.relative_to(root).as_posix(): pulumi.FileAsset(str(p)) for p in files}
        )
        obj = aws.s3.BucketObjectv2(
            f"{self._name}-artifact",
            bucket=bucket.id,
            key=self.artifact_key,
            source=archive,
            server_side_encryption="aws:kms",
            kms_key_id=self._args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Hosts poll this parameter and deploy a new artifact without being replaced.
        self.artifact_parameter_name = f"/mdp/{self._args.stack}/artifact-key"
        parameter = aws.ssm.Parameter(
            f"{self._name}-artifact-key",
            name=self.artifact_parameter_name,
            type="String",
            value=obj.key,
            description="S3 key of the code artifact the hosts run",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.artifact_parameter_arn = parameter.arn


def _tls_only_policy(bucket_arn: str, logs_bucket: bool) -> str:
    statements: list[dict[str, object]] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if logs_bucket:
        statements.append(
            {
                "Sid": "S3ServerAccessLogsDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
            }
        )
    return policy_document(*statements)
