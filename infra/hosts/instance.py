"""What both hosts share: their settings, where they live, and the hardened EC2 instance they run on."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from infra.hosts import iam
from infra.network import https_egress
from infra.sections import Section, StackName

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")


class HostSettings(Section):
    """One EC2 host."""

    instance_type: str = Field("t3.small", examples=["t3.small"])
    root_volume_gb: int = Field(20, ge=8, le=500, examples=[30])
    # One-minute CloudWatch metrics cost about $2 per host a month: on in prod, off in dev.
    detailed_monitoring: bool = Field(False, examples=[True])

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, v: str) -> str:
        if not _INSTANCE_TYPE.match(v) or v.startswith("db."):
            raise ValueError(f"{v!r} is not an EC2 instance type such as t3.small")
        return v


@dataclass(frozen=True)
class HostCommon:
    """What both hosts share: where they live and where their code comes from."""

    stack: StackName
    region: str
    vpc_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    artifact_bucket: pulumi.Input[str]
    artifact_bucket_arn: pulumi.Input[str]
    artifact_parameter_name: str
    artifact_parameter_arn: pulumi.Input[str]
    protect: bool


@dataclass(frozen=True)
class HostArgs:
    """Where a host runs: the values every host shares, its settings and its subnet."""

    common: HostCommon
    subnet_id: pulumi.Input[str]
    settings: HostSettings


class Host(pulumi.ComponentResource):
    """Shared pieces: role with SSM, instance profile, and a hardened instance."""

    role_arn: pulumi.Output[str]
    user_data: pulumi.Output[str]

    def _policy(self) -> pulumi.Output[str]:
        """The host's own IAM policy, next to the SSM agent's."""
        raise NotImplementedError

    def _user_data(self) -> pulumi.Output[str]:
        """The host's cloud-config."""
        raise NotImplementedError

    def _policy_of(
        self, common: HostCommon, build: Callable[..., str], **arns: pulumi.Input[Any]
    ) -> pulumi.Output[str]:
        """The policy `build` writes once `arns`, the stack's key and the artifact's ARNs resolve."""
        return pulumi.Output.all(
            key_arn=common.kms_key_arn,
            artifact_bucket_arn=common.artifact_bucket_arn,
            parameter_arn=common.artifact_parameter_arn,
            **arns,
        ).apply(lambda v: build(common.region, **v))

    def _boot(
        self, common: HostCommon, render: Callable[..., str], **values: pulumi.Input[Any]
    ) -> pulumi.Output[str]:
        """The cloud-config `render` writes once `values` and the artifact bucket resolve.

        `render` takes them by name, with the host's stack, region and artifact parameter.
        """
        return pulumi.Output.all(artifact_bucket=common.artifact_bucket, **values).apply(
            lambda v: render(
                stack=common.stack,
                region=common.region,
                artifact_parameter=common.artifact_parameter_name,
                **v,
            )
        )

    def _outbound_only(
        self, name: str, vpc_id: pulumi.Input[str], description: str, https_to: str
    ) -> aws.ec2.SecurityGroup:
        """A security group with no inbound rule at all and HTTPS out (to `https_to`) only."""
        return aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description=description,
            ingress=[],
            egress=[https_egress(https_to)],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _instance(
        self,
        name: str,
        args: HostArgs,
        security_group: aws.ec2.SecurityGroup,
        public_ip: bool,
        eip_allocation_id: pulumi.Input[str] | None = None,
    ) -> aws.ec2.Instance:
        """The role with the host's policy, then the instance booting its cloud-config,
        associated with the Elastic IP `eip_allocation_id` if one is given."""
        common, settings = args.common, args.settings
        self.user_data = self._user_data()
        profile, self.role_arn = iam.instance_profile(self, name, self._policy())
        ami = aws.ssm.get_parameter_output(
            name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=ami,
            instance_type=settings.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            associate_public_ip_address=public_ip,
            ebs_optimized=True,
            monitoring=settings.detailed_monitoring,
            disable_api_termination=common.protect,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True,
                kms_key_id=common.kms_key_arn,
                volume_size=settings.root_volume_gb,
                volume_type="gp3",
                delete_on_termination=True,
            ),
            user_data=self.user_data,
            tags={"Name": f"mdp-{common.stack}-{name}"},
            # A newer AMI is picked up by replacing the host deliberately, not on every preview.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        if eip_allocation_id is not None:
            aws.ec2.EipAssociation(
                f"{name}-eip-association",
                allocation_id=eip_allocation_id,
                instance_id=instance.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return instance
