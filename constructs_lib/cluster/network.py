"""The cluster's network: a new VPC with private and public subnets, NAT, endpoints and
flow logs, or the subnets of an existing one."""

from __future__ import annotations

from constructs_lib._cdktf import Construct, Fn, Token
from constructs_lib._providers import aws
from constructs_lib.cluster.props import AZ_KEYS, DISCOVERY_TAG, GpuEksClusterProps, NewVpcProps
from constructs_lib.iam import (
    Role,
    Statement,
    service_principal,
)


class Network(Construct):
    """The new VPC: subnets, gateways, routes, endpoints, flow logs."""

    def __init__(self, scope: Construct, id_: str, *, props: GpuEksClusterProps,
                 vpc_props: NewVpcProps, region: str, key_arn: str) -> None:
        super().__init__(scope, id_)
        name = props.name
        cluster_name = props.physical_cluster_name
        private_cidrs, public_cidrs = vpc_props.subnet_cidrs()
        zone_names: list[str] = list(vpc_props.availability_zones)
        if not zone_names:
            # Unpinned: the first az_count available zones. If one of them ever stops being
            # "available" the list shifts and subnets would be replaced: pin them instead.
            zones = aws.data_aws_availability_zones.DataAwsAvailabilityZones(
                self, "Zones", state="available",
                filter=[aws.data_aws_availability_zones.DataAwsAvailabilityZonesFilter(
                    name="opt-in-status", values=["opt-in-not-required"])],
            )
            zone_names = [Token.as_string(Fn.element(zones.names, i))
                          for i in range(vpc_props.az_count)]
        self.vpc = aws.vpc.Vpc(
            self, "Vpc", cidr_block=vpc_props.cidr, enable_dns_support=True,
            enable_dns_hostnames=True, tags={"Name": f"{name}-vpc"},
        )
        # The default security group admits nothing; everything uses its own group.
        aws.default_security_group.DefaultSecurityGroup(
            self, "DefaultSecurityGroup", vpc_id=self.vpc.id, ingress=[], egress=[],
            tags={"Name": f"{name}-default-deny"},
        )
        igw = aws.internet_gateway.InternetGateway(
            self, "InternetGateway", vpc_id=self.vpc.id, tags={"Name": f"{name}-igw"})
        public_rt = aws.route_table.RouteTable(
            self, "PublicRouteTable", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"})
        aws.route.Route(self, "PublicDefaultRoute", route_table_id=public_rt.id,
                        destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)

        self.private_subnets: list = []
        self.private_route_tables: list = []
        nats: list = []
        for index in range(vpc_props.az_count):
            key = AZ_KEYS[index]
            zone = zone_names[index]
            public = aws.subnet.Subnet(
                self, f"PublicSubnet{key}", vpc_id=self.vpc.id, availability_zone=zone,
                cidr_block=public_cidrs[index], map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{key.lower()}", "kubernetes.io/role/elb": "1"},
            )
            aws.route_table_association.RouteTableAssociation(
                self, f"PublicRouteTableAssociation{key}", subnet_id=public.id,
                route_table_id=public_rt.id)
            private = aws.subnet.Subnet(
                self, f"PrivateSubnet{key}", vpc_id=self.vpc.id, availability_zone=zone,
                cidr_block=private_cidrs[index], map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{key.lower()}",
                      "kubernetes.io/role/internal-elb": "1",
                      DISCOVERY_TAG: cluster_name},
            )
            self.private_subnets.append(private)
            if vpc_props.nat_gateways == "one_per_az" or index == 0:
                eip = aws.eip.Eip(self, f"NatAddress{key}", domain="vpc",
                                  tags={"Name": f"{name}-nat-{key.lower()}"})
                nats.append(aws.nat_gateway.NatGateway(
                    self, f"NatGateway{key}", allocation_id=eip.allocation_id,
                    subnet_id=public.id, tags={"Name": f"{name}-nat-{key.lower()}"},
                    depends_on=[igw],
                ))
            route_table = aws.route_table.RouteTable(
                self, f"PrivateRouteTable{key}", vpc_id=self.vpc.id,
                tags={"Name": f"{name}-private-{key.lower()}"})
            self.private_route_tables.append(route_table)
            aws.route.Route(self, f"PrivateDefaultRoute{key}", route_table_id=route_table.id,
                            destination_cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)
            aws.route_table_association.RouteTableAssociation(
                self, f"PrivateRouteTableAssociation{key}", subnet_id=private.id,
                route_table_id=route_table.id)

        aws.vpc_endpoint.VpcEndpoint(
            self, "S3GatewayEndpoint", vpc_id=self.vpc.id, vpc_endpoint_type="Gateway",
            service_name=f"com.amazonaws.{region}.s3",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags={"Name": f"{name}-s3"},
        )
        if vpc_props.interface_endpoints:
            endpoint_sg = aws.security_group.SecurityGroup(
                self, "EndpointSecurityGroup", name=f"{name}-vpc-endpoints",
                description="HTTPS from the VPC to the interface endpoints",
                vpc_id=self.vpc.id, tags={"Name": f"{name}-vpc-endpoints"},
            )
            aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
                self, "EndpointIngressHttps", security_group_id=endpoint_sg.id,
                ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4=vpc_props.cidr,
                description="HTTPS from the VPC",
            )
            for service in vpc_props.interface_endpoints:
                aws.vpc_endpoint.VpcEndpoint(
                    self, f"Endpoint-{service}", vpc_id=self.vpc.id,
                    vpc_endpoint_type="Interface", service_name=f"com.amazonaws.{region}.{service}",
                    private_dns_enabled=True, subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": f"{name}-{service}"},
                )
        if vpc_props.flow_logs:
            log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
                self, "FlowLogGroup", name=f"/aws/vpc-flow-logs/{name}",
                retention_in_days=props.log_retention_days, kms_key_id=key_arn,
            )
            role = Role(self, "FlowLogRole", name=f"{name}-vpc-flow-logs",
                        assumed_by=service_principal("vpc-flow-logs.amazonaws.com"),
                        description="VPC flow logs write to their log group")
            role.add_policy("WriteFlowLogs", [Statement(
                sid="WriteFlowLogs",
                actions=("logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"),
                resources=(log_group.arn, f"{log_group.arn}:*"),
            )])
            aws.flow_log.FlowLog(
                self, "FlowLog", vpc_id=self.vpc.id, traffic_type="ALL",
                log_destination_type="cloud-watch-logs", log_destination=log_group.arn,
                iam_role_arn=role.role_arn, max_aggregation_interval=600,
                tags={"Name": f"{name}-vpc"},
            )


