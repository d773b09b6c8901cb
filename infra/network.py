"""The VPC: two private subnets for RDS, a public subnet for the hosts, flow logs, no default rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.component import Component
from infra.iam import assume_role_policy, policy_document
from infra.sections import StackName


def https_egress(to: str) -> aws.ec2.SecurityGroupEgressArgs:
    """HTTPS out to anywhere, described as what it reaches (`to`): Snowflake, AWS APIs, PyPI..."""
    return aws.ec2.SecurityGroupEgressArgs(
        protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_blocks=["0.0.0.0/0"],
        description=f"HTTPS: {to}",
    )


@dataclass(frozen=True)
class NetworkArgs:
    stack: StackName
    region: str
    cidr: IPv4Network
    availability_zones: tuple[str, str]
    nat_gateway: bool
    flow_log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    # The Airflow host sits in the public subnet (dev) and needs its own stable address.
    airflow_public: bool = True


class Network(Component[NetworkArgs]):
    """A VPC with a public subnet, two private subnets in two AZs, and VPC flow logs."""

    TYPE = "mdp:network:Network"

    vpc_id: pulumi.Output[str]
    public_subnet_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    vpc_cidr: str
    airflow_egress_ip: pulumi.Output[str]
    airflow_eip_allocation_id: pulumi.Output[str] | None

    def _declare(self, name: str, args: NetworkArgs) -> Mapping[str, Any]:
        child = pulumi.ResourceOptions(parent=self)
        # /20 blocks: the first public, the next two private, the rest free for growth.
        blocks = list(args.cidr.subnets(new_prefix=max(args.cidr.prefixlen + 4, 20)))
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(args.cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"mdp-{args.stack}"},
            opts=child,
        )
        # Adopting the default security group strips its allow-all rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": f"mdp-{args.stack}-default-unused"},
            opts=child,
        )
        self.public_subnet = self._subnet("public-a", blocks[0], args.availability_zones[0])
        self.private_subnets = [
            self._subnet("private-a", blocks[1], args.availability_zones[0]),
            self._subnet("private-b", blocks[2], args.availability_zones[1]),
        ]
        self._create_routing()
        self._create_airflow_address()
        self._create_flow_logs()
        self.vpc_id = self.vpc.id
        self.vpc_cidr = str(args.cidr)
        self.public_subnet_id = self.public_subnet.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])
        return {
            "vpcId": self.vpc_id,
            "publicSubnetId": self.public_subnet_id,
            "privateSubnetIds": self.private_subnet_ids,
            "airflowEgressIp": self.airflow_egress_ip,
        }

    def _subnet(self, suffix: str, block: IPv4Network, zone: str) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{self._name}-{suffix}",
            vpc_id=self.vpc.id,
            cidr_block=str(block),
            availability_zone=zone,
            # Hosts that need a public address ask for one explicitly (EIP or instance flag).
            map_public_ip_on_launch=False,
            tags={"Name": f"mdp-{self._args.stack}-{suffix}"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_routing(self) -> None:
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-a-rta",
            subnet_id=self.public_subnet.id,
            route_table_id=public_rt.id,
            opts=child,
        )
        private_routes: list[aws.ec2.RouteTableRouteArgs] = []
        self._nat_ip: pulumi.Output[str] | None = None
        if self._args.nat_gateway:
            eip = aws.ec2.Eip(f"{name}-nat-eip", domain="vpc", opts=child)
            self._nat_ip = eip.public_ip
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=eip.id,
                subnet_id=self.public_subnet.id,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            private_routes.append(
                aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)
            )
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-rt", vpc_id=self.vpc.id, routes=private_routes, opts=child
        )
        for suffix, subnet in zip(("a", "b"), self.private_subnets, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{suffix}-rta",
                subnet_id=subnet.id,
                route_table_id=private_rt.id,
                opts=child,
            )
        # S3 through a free gateway endpoint: artifacts and exports never need the NAT.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{self._args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[public_rt.id, private_rt.id],
            opts=child,
        )

    def _create_airflow_address(self) -> None:
        # Snowflake's network policy for the dbt user allows exactly this address, so it must
        # not change when the host is replaced: an Elastic IP in dev, the NAT's in prod.
        if self._args.airflow_public:
            eip = aws.ec2.Eip(
                f"{self._name}-airflow-eip",
                domain="vpc",
                tags={"Name": f"mdp-{self._args.stack}-airflow"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.airflow_egress_ip = eip.public_ip
            self.airflow_eip_allocation_id = eip.id
            return
        if self._nat_ip is None:
            raise ValueError("a private Airflow host needs the NAT gateway for its egress")
        self.airflow_egress_ip = self._nat_ip
        self.airflow_eip_allocation_id = None

    def _create_flow_logs(self) -> None:
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/mdp/{self._args.stack}/vpc-flow-logs",
            retention_in_days=self._args.flow_log_retention_days,
            kms_key_id=self._args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: policy_document(
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        "Resource": [arn, f"{arn}:*"],
                    }
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            opts=child,
        )
