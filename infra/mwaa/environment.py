"""Airflow on Amazon MWAA: the environment, its source bucket objects, role, network and logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pulumi
import pulumi_aws as aws

from infra.cloud_init import SECRETS_BACKEND, secrets_backend_kwargs
from infra.hosts.airflow import (
    EC2_COMPONENT,
    MWAA_COMPONENT,
    BackendSecrets,
    backend_prefixes,
    create_backend_secrets,
)
from infra.hosts.iam import EXPORTS_PREFIX
from infra.mwaa import bundle, iam
from infra.mwaa.config import MwaaSettings
from infra.network import https_egress
from infra.sections import StackName
from infra.storage import REPO_ROOT

DAGS_PREFIX = "dags"
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"
STARTUP_KEY = "startup.sh"

RuleT = TypeVar("RuleT")


def environment_name(stack: str) -> str:
    return f"mdp-{stack}"


def _within_group(rule: Callable[..., RuleT], description: str) -> RuleT:
    """Every protocol and port, to or from the security group itself."""
    return rule(protocol="-1", from_port=0, to_port=0, self=True, description=description)


@dataclass(frozen=True)
class MwaaEnvironmentArgs:
    """The environment, in the stack's private subnets, reading the same secrets as the EC2 host."""

    stack: StackName
    region: str
    settings: MwaaSettings
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    kms_key_arn: pulumi.Input[str]
    source_bucket: pulumi.Input[str]
    source_bucket_arn: pulumi.Input[str]
    exports_bucket: pulumi.Input[str]
    exports_bucket_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    connections: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    raw_database: str = "RAW"
    # The stack's alert topic, when `mdp:alerts` is set: the DAG publishes its alerts there (its
    # ARN reaches the DAG as an Airflow variable, through the same secrets backend).
    alerts_topic_arn: pulumi.Input[str] | None = None
    source_root: Path = REPO_ROOT


class MwaaEnvironment(pulumi.ComponentResource):
    """One MWAA environment: private web server, KMS, every log type, least-privilege role."""

    name: str
    arn: pulumi.Output[str]
    webserver_url: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    connections_prefix: str
    variables_prefix: str
    secret_arns: pulumi.Output[list[str]]
    log_group_names: tuple[str, ...]
    object_versions: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: MwaaEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(MWAA_COMPONENT, name, None, opts)
        self._name, self._args = name, args
        child = pulumi.ResourceOptions(parent=self)
        self.name = environment_name(args.stack)
        self.connections_prefix, self.variables_prefix = backend_prefixes(args.stack)
        self.secret_arns = pulumi.Output.all(
            *create_backend_secrets(
                self,
                name,
                BackendSecrets(
                    stack=args.stack,
                    kms_key_arn=args.kms_key_arn,
                    protect=args.protect,
                    connections=args.connections,
                    variables=args.variables,
                ),
                moved_from=pulumi.create_urn(name, EC2_COMPONENT),
            )
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-mwaa-sg",
            vpc_id=args.vpc_id,
            description="mdp MWAA: its own parts talk to each other; HTTPS out through NAT",
            ingress=[
                _within_group(
                    aws.ec2.SecurityGroupIngressArgs,
                    "MWAA requires its security group to reference itself",
                )
            ],
            egress=[
                _within_group(
                    aws.ec2.SecurityGroupEgressArgs,
                    "Workers, schedulers, web server and the metadata endpoint",
                ),
                https_egress("Snowflake, Airbyte API, AWS APIs, PyPI"),
            ],
            opts=child,
        )
        self.log_group_names = tuple(f"airflow-{self.name}-{kind}" for kind in iam.LOG_KINDS)
        log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-mwaa-logs-{kind.lower()}",
                name=group,
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for kind, group in zip(iam.LOG_KINDS, self.log_group_names, strict=True)
        }
        role = aws.iam.Role(
            f"{name}-mwaa-execution-role", assume_role_policy=iam.assume_mwaa(), opts=child
        )
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        role_policy = aws.iam.RolePolicy(
            f"{name}-mwaa-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(
                account_id=account_id,
                key_arn=args.kms_key_arn,
                source_bucket_arn=args.source_bucket_arn,
                exports_bucket_arn=args.exports_bucket_arn,
                secret_arns=self.secret_arns,
                alerts_topic_arn=args.alerts_topic_arn or "",
            ).apply(lambda v: iam.execution_policy(args.region, environment=self.name, **v)),
            opts=child,
        )
        objects = self._bundle()
        logging_configuration = aws.mwaa.EnvironmentLoggingConfigurationArgs(
            dag_processing_logs=aws.mwaa.EnvironmentLoggingConfigurationDagProcessingLogsArgs(
                enabled=True, log_level="INFO"
            ),
            scheduler_logs=aws.mwaa.EnvironmentLoggingConfigurationSchedulerLogsArgs(
                enabled=True, log_level="INFO"
            ),
            task_logs=aws.mwaa.EnvironmentLoggingConfigurationTaskLogsArgs(
                enabled=True, log_level="INFO"
            ),
            webserver_logs=aws.mwaa.EnvironmentLoggingConfigurationWebserverLogsArgs(
                enabled=True, log_level="WARNING"
            ),
            worker_logs=aws.mwaa.EnvironmentLoggingConfigurationWorkerLogsArgs(
                enabled=True, log_level="INFO"
            ),
        )
        settings = args.settings
        environment = aws.mwaa.Environment(
            f"{name}-mwaa",
            name=self.name,
            airflow_version=settings.airflow_version,
            environment_class=settings.environment_class,
            min_workers=settings.min_workers,
            max_workers=settings.max_workers,
            schedulers=settings.schedulers,
            weekly_maintenance_window_start=settings.weekly_maintenance_window_start,
            execution_role_arn=role.arn,
            kms_key=args.kms_key_arn,
            webserver_access_mode="PRIVATE_ONLY",
            source_bucket_arn=args.source_bucket_arn,
            dag_s3_path=f"{DAGS_PREFIX}/",
            plugins_s3_path=PLUGINS_KEY,
            plugins_s3_object_version=objects[PLUGINS_KEY].version_id,
            requirements_s3_path=REQUIREMENTS_KEY,
            requirements_s3_object_version=objects[REQUIREMENTS_KEY].version_id,
            startup_script_s3_path=STARTUP_KEY,
            startup_script_s3_object_version=objects[STARTUP_KEY].version_id,
            network_configuration=aws.mwaa.EnvironmentNetworkConfigurationArgs(
                security_group_ids=[security_group.id],
                subnet_ids=args.private_subnet_ids,
            ),
            logging_configuration=logging_configuration,
            airflow_configuration_options=self._configuration(),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=[role_policy, *log_groups.values()],
            ),
        )
        self.arn = environment.arn
        self.webserver_url = environment.webserver_url
        self.execution_role_arn = role.arn
        self.object_versions = pulumi.Output.all(
            **{key: obj.version_id for key, obj in objects.items()}
        )
        self.register_outputs(
            {
                "name": self.name,
                "arn": self.arn,
                "webserverUrl": self.webserver_url,
                "secretArns": self.secret_arns,
                "objectVersions": self.object_versions,
            }
        )

    def _configuration(self) -> dict[str, str]:
        """The same Secrets Manager backend and prefixes as the EC2 host."""
        args = self._args
        return {
            "secrets.backend": SECRETS_BACKEND,
            "secrets.backend_kwargs": secrets_backend_kwargs(
                self.connections_prefix,
                tuple(args.connections),
                self.variables_prefix,
                tuple(args.variables),
                args.region,
            ),
            "core.load_examples": "False",
        }

    def _bundle(self) -> dict[str, aws.s3.BucketObjectv2]:
        args = self._args
        locked = bundle.locked_versions(args.source_root / "uv.lock")
        constrained = bundle.vendored_constraints(args.settings.airflow_version)
        code = bundle.code_files(args.source_root)
        if bundle.MANIFEST.as_posix() not in code:
            pulumi.log.warn(
                f"{bundle.MANIFEST} is missing, so MWAA cannot render the DAG: run "
                "`make dbt-manifest` before `pulumi up`.",
                resource=self,
            )
        archive: dict[str, pulumi.Asset | pulumi.Archive] = {
            rel: pulumi.FileAsset(str(path)) for rel, path in sorted(code.items())
        }
        archive[".airflowignore"] = pulumi.StringAsset(bundle.PLUGINS_IGNORE)
        startup = pulumi.Output.from_input(args.exports_bucket).apply(
            lambda bucket: bundle.startup_script(
                bundle.StartupEnv(
                    stack=args.stack,
                    raw_database=args.raw_database,
                    exports_target=f"s3://{bucket}/{EXPORTS_PREFIX}",
                ),
                locked,
            )
        )
        contents: dict[str, tuple[str, pulumi.Input[str] | pulumi.AssetArchive]] = {
            f"{DAGS_PREFIX}/mdp_daily.py": ("dag", bundle.DAG_LOADER),
            PLUGINS_KEY: ("plugins", pulumi.AssetArchive(archive)),
            REQUIREMENTS_KEY: (
                "requirements",
                bundle.requirements_txt(args.settings.airflow_version, locked, constrained),
            ),
            STARTUP_KEY: ("startup-script", startup),
        }
        objects: dict[str, aws.s3.BucketObjectv2] = {}
        for key, (label, body) in contents.items():
            source = body if isinstance(body, pulumi.AssetArchive) else None
            objects[key] = aws.s3.BucketObjectv2(
                f"{self._name}-mwaa-{label}",
                bucket=args.source_bucket,
                key=key,
                source=source,
                content=None if source is not None else body,
                server_side_encryption="aws:kms",
                kms_key_id=args.kms_key_arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return objects
