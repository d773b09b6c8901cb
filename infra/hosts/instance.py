"""What both hosts share: their settings, where they live, and the hardened EC2 instance they run on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

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


class Placement(Protocol):
    """What every host's args say of where it runs: the shared values, its settings, its subnet."""

    @property
    def common(self) -> HostCommon: ...

    @property
    def settings(self) -> HostSettings: ...

    @property
    def subnet_id(self) -> pulumi.Input[str]: ...


class Host(pulumi.ComponentResource):
    """Shared pieces: role with SSM, instance profile, and a hardened instance."""

    role_arn: pulumi.Output[str]

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
        placement: Placement,
        security_group: aws.ec2.SecurityGroup,
        policy: pulumi.Input[str],
        user_data: pulumi.Input[str],
        public_ip: bool,
    ) -> aws.ec2.Instance:
        """The role with `policy` (and the SSM agent's actions), then the instance it runs as."""
        common, settings = placement.common, placement.settings
        profile, self.role_arn = iam.instance_profile(self, name, policy)
        ami = aws.ssm.get_parameter_output(
            name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        return aws.ec2.Instance(
            f"{name}-instance",
            ami=ami,
            instance_type=settings.instance_type,
            subnet_id=placement.subnet_id,
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
            user_data=user_data,
            tags={"Name": f"mdp-{common.stack}-{name}"},
            # A newer AMI is picked up by replacing the host deliberately, not on every preview.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
