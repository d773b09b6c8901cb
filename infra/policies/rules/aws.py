"""AWS rules, mirroring Checkov, tfsec/Trivy and AWS Foundational Security Best Practices checks."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from infra.policies.rules import REGISTRY, Context, Props, Resource, Violation

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
RDS = "aws:rds/instance:Instance"
RDS_PARAMS = "aws:rds/parameterGroup:ParameterGroup"
EC2 = "aws:ec2/instance:Instance"
KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
SNS_TOPIC = "aws:sns/topic:Topic"
SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUDGET = "aws:budgets/budget:Budget"
MWAA = "aws:mwaa/environment:Environment"

ADMIN_PORTS = {22: "SSH", 3389: "RDP", 5432: "PostgreSQL", 8080: "Airflow web", 3306: "MySQL"}
OPEN = {"0.0.0.0/0", "::/0"}
rule = REGISTRY.resource_rule
stack_rule = REGISTRY.stack_rule


def _list(value: Any) -> list[Any]:
    # The policy engine hands over read-only Mapping/Sequence proxies, not dicts and lists.
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def _exposed_ports(from_port: Any, to_port: Any, protocol: Any) -> list[int]:
    if str(protocol) in ("-1", "all"):
        return sorted(ADMIN_PORTS)
    lo, hi = int(from_port or 0), int(to_port if to_port is not None else from_port or 0)
    return [p for p in sorted(ADMIN_PORTS) if lo <= p <= hi]


def _open_ingress(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    found = []
    for r in rules:
        cidrs = set(_list(r.get("cidrBlocks"))) | set(_list(r.get("ipv6CidrBlocks")))
        cidrs |= {c for c in (r.get("cidrIpv4"), r.get("cidrIpv6")) if c}
        if cidrs & OPEN:
            for port in _exposed_ports(
                r.get("fromPort"), r.get("toPort"), r.get("protocol", r.get("ipProtocol"))
            ):
                found.append(
                    f"{ADMIN_PORTS[port]} port {port} is open to the internet ({', '.join(sorted(cidrs & OPEN))})"
                )
    return found


@rule(
    "no-internet-ingress-to-admin-ports",
    "No ingress from 0.0.0.0/0 or ::/0 to SSH, RDP, PostgreSQL, MySQL or the Airflow web port",
    (
        "Checkov CKV_AWS_24",
        "Checkov CKV_AWS_25",
        "Trivy AVD-AWS-0107",
        "FSBP EC2.13",
        "FSBP EC2.19",
    ),
    (SG, SG_INGRESS_RULE, SG_RULE),
    severity="critical",
)
def no_internet_ingress(t: str, p: Props, c: Context) -> list[str]:
    if t == SG:
        return _open_ingress(_list(p.get("ingress")))
    if t == SG_RULE and p.get("type") != "ingress":
        return []
    return _open_ingress([dict(p)])


@rule(
    "security-group-rules-described",
    "Every security group rule says why it exists",
    ("Checkov CKV_AWS_23", "Trivy AVD-AWS-0124"),
    (SG, SG_INGRESS_RULE, SG_RULE),
    severity="low",
)
def rules_described(t: str, p: Props, c: Context) -> list[str]:
    if t != SG:
        return [] if p.get("description") else ["security group rule has no description"]
    if not p.get("description"):
        return ["security group has no description"]
    rules = _list(p.get("ingress")) + _list(p.get("egress"))
    return [
        f"rule on port {r.get('fromPort')} has no description"
        for r in rules
        if not r.get("description")
    ]


@rule(
    "default-security-group-closed",
    "The VPC's default security group allows no traffic",
    ("Checkov CKV2_AWS_12", "FSBP EC2.2"),
    (DEFAULT_SG,),
)
def default_sg_closed(t: str, p: Props, c: Context) -> list[str]:
    if _list(p.get("ingress")) or _list(p.get("egress")):
        return ["default security group still has rules; declare it with ingress=[] and egress=[]"]
    return []


@rule(
    "subnet-no-auto-public-ip",
    "Subnets do not hand out public IPs by default",
    ("Checkov CKV_AWS_130", "FSBP EC2.15"),
    (SUBNET,),
    severity="medium",
)
def subnet_no_public_ip(t: str, p: Props, c: Context) -> list[str]:
    return ["mapPublicIpOnLaunch is true"] if p.get("mapPublicIpOnLaunch") else []


@stack_rule(
    "vpc-flow-logs",
    "Every VPC has flow logs capturing ALL traffic",
    ("Checkov CKV2_AWS_11", "Trivy AVD-AWS-0178", "FSBP EC2.6"),
)
def vpc_flow_logs(resources: Sequence[Resource], c: Context) -> list[Violation]:
    vpcs = [r for r in resources if r.type == VPC]
    logs = [r for r in resources if r.type == FLOW_LOG and r.props.get("trafficType") == "ALL"]
    if vpcs and len(logs) < len(vpcs):
        return [
            Violation("vpc-flow-logs", v.name, "VPC has no flow log with trafficType ALL")
            for v in vpcs
        ]
    return []


@rule(
    "rds-not-public",
    "RDS is not publicly accessible",
    ("Checkov CKV_AWS_17", "Trivy AVD-AWS-0180", "FSBP RDS.2"),
    (RDS,),
    "critical",
)
def rds_private(t: str, p: Props, c: Context) -> list[str]:
    return ["publiclyAccessible is true"] if p.get("publiclyAccessible") else []


@rule(
    "rds-encrypted",
    "RDS storage is encrypted with a customer-managed KMS key",
    ("Checkov CKV_AWS_16", "Trivy AVD-AWS-0080", "FSBP RDS.3"),
    (RDS,),
)
def rds_encrypted(t: str, p: Props, c: Context) -> list[str]:
    out = [] if p.get("storageEncrypted") else ["storageEncrypted is not true"]
    return out + ([] if p.get("kmsKeyId") else ["no kmsKeyId: storage uses the AWS-managed key"])


@rule(
    "rds-backup-retention",
    "RDS keeps automated backups for at least 7 days",
    ("Checkov CKV_AWS_133", "Trivy AVD-AWS-0077", "FSBP RDS.11"),
    (RDS,),
)
def rds_backups(t: str, p: Props, c: Context) -> list[str]:
    days = int(p.get("backupRetentionPeriod") or 0)
    return [] if days >= 7 else [f"backupRetentionPeriod is {days}, below 7 days"]


@rule(
    "rds-final-snapshot",
    "Deleting RDS takes a final snapshot",
    ("mdp: final snapshot on delete (AWS Well-Architected REL09)",),
    (RDS,),
)
def rds_final_snapshot(t: str, p: Props, c: Context) -> list[str]:
    if p.get("skipFinalSnapshot") or not p.get("finalSnapshotIdentifier"):
        return ["a delete would skip the final snapshot"]
    return []


@rule(
    "rds-deletion-protection-in-prod",
    "Production RDS has deletion protection",
    ("Checkov CKV_AWS_293", "FSBP RDS.8"),
    (RDS,),
)
def rds_deletion_protection(t: str, p: Props, c: Context) -> list[str]:
    return (
        ["deletionProtection is off in production"]
        if c.production and not p.get("deletionProtection")
        else []
    )


@rule(
    "rds-multi-az-in-prod",
    "Production RDS runs Multi-AZ",
    ("Checkov CKV_AWS_157", "FSBP RDS.5"),
    (RDS,),
)
def rds_multi_az(t: str, p: Props, c: Context) -> list[str]:
    return ["multiAz is off in production"] if c.production and not p.get("multiAz") else []


@rule(
    "rds-logs-exported",
    "RDS exports the PostgreSQL log to CloudWatch",
    ("Checkov CKV_AWS_129", "FSBP RDS.9"),
    (RDS,),
    "medium",
)
def rds_logs(t: str, p: Props, c: Context) -> list[str]:
    return (
        []
        if "postgresql" in _list(p.get("enabledCloudwatchLogsExports"))
        else ["postgresql log is not exported"]
    )


@rule(
    "rds-iam-auth",
    "RDS accepts IAM database authentication",
    ("Checkov CKV_AWS_161", "FSBP RDS.10"),
    (RDS,),
    "medium",
)
def rds_iam_auth(t: str, p: Props, c: Context) -> list[str]:
    return (
        [] if p.get("iamDatabaseAuthenticationEnabled") else ["IAM database authentication is off"]
    )


@rule(
    "rds-auto-minor-upgrade",
    "RDS takes minor engine upgrades",
    ("Checkov CKV_AWS_226", "FSBP RDS.13"),
    (RDS,),
    "medium",
)
def rds_minor_upgrades(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("autoMinorVersionUpgrade", True) else ["autoMinorVersionUpgrade is off"]


@rule(
    "rds-enhanced-monitoring",
    "RDS has enhanced monitoring",
    ("Checkov CKV_AWS_118",),
    (RDS,),
    "low",
)
def rds_monitoring(t: str, p: Props, c: Context) -> list[str]:
    return [] if int(p.get("monitoringInterval") or 0) > 0 else ["monitoringInterval is 0"]


@rule(
    "rds-copy-tags-to-snapshots",
    "RDS copies tags to snapshots",
    ("Checkov CKV2_AWS_60", "FSBP RDS.17"),
    (RDS,),
    "low",
)
def rds_copy_tags(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("copyTagsToSnapshot") else ["copyTagsToSnapshot is off"]


@rule(
    "rds-managed-master-password",
    "The master password lives in Secrets Manager, never in the program",
    ("mdp: RDS-managed master password in Secrets Manager",),
    (RDS,),
    "critical",
)
def rds_managed_password(t: str, p: Props, c: Context) -> list[str]:
    out = [] if p.get("manageMasterUserPassword") else ["manageMasterUserPassword is off"]
    return out + (["a master password is set in the program"] if p.get("password") else [])


def _parameters(p: Props) -> dict[str, str]:
    return {str(x.get("name")): str(x.get("value")) for x in _list(p.get("parameters"))}


@rule(
    "postgres-force-ssl",
    "PostgreSQL refuses connections without TLS",
    ("Checkov CKV2_AWS_69",),
    (RDS_PARAMS,),
)
def pg_force_ssl(t: str, p: Props, c: Context) -> list[str]:
    if not str(p.get("family", "")).startswith("postgres"):
        return []
    return [] if _parameters(p).get("rds.force_ssl") == "1" else ["rds.force_ssl is not 1"]


@rule(
    "postgres-statement-logging",
    "PostgreSQL logs DDL and slow statements",
    ("Checkov CKV2_AWS_30",),
    (RDS_PARAMS,),
    "medium",
)
def pg_logging(t: str, p: Props, c: Context) -> list[str]:
    if not str(p.get("family", "")).startswith("postgres"):
        return []
    params = _parameters(p)
    out = (
        [] if params.get("log_statement") in ("ddl", "mod", "all") else ["log_statement is not set"]
    )
    return out + (
        [] if "log_min_duration_statement" in params else ["log_min_duration_statement is not set"]
    )


@rule(
    "ec2-imdsv2",
    "EC2 requires IMDSv2 tokens",
    ("Checkov CKV_AWS_79", "Trivy AVD-AWS-0028", "FSBP EC2.8"),
    (EC2,),
)
def ec2_imdsv2(t: str, p: Props, c: Context) -> list[str]:
    meta = p.get("metadataOptions") or {}
    return (
        []
        if meta.get("httpTokens") == "required"
        else ["metadataOptions.httpTokens is not 'required'"]
    )


@rule(
    "ec2-root-volume-encrypted",
    "EC2 root volumes are encrypted",
    ("Checkov CKV_AWS_8", "Trivy AVD-AWS-0131", "FSBP EC2.3"),
    (EC2,),
)
def ec2_encrypted(t: str, p: Props, c: Context) -> list[str]:
    root = p.get("rootBlockDevice") or {}
    out = [] if root.get("encrypted") else ["root volume is not encrypted"]
    return out + [
        f"EBS volume {d.get('deviceName')} is not encrypted"
        for d in _list(p.get("ebsBlockDevices"))
        if not d.get("encrypted")
    ]


_SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"(?i)aws_secret_access_key\s*[=:]"),
    # A literal value on its own line; shell expansions and code such as password=cfg["x"] do not match.
    re.compile(r"(?im)\b(?:PG)?PASSWORD\s*[=:]\s*['\"]?[A-Za-z0-9!#%+/=@^_~.-]{8,}['\"]?\s*$"),
    re.compile(r"(?i)postgres(?:ql)?://[^:/\s]+:[^@/\s$]+@"),
)


def secret_findings(text: str) -> list[str]:
    """Patterns in `text` that look like a credential (private keys, AWS keys, passwords, URIs with one)."""
    return [
        f"looks like a credential ({pat.pattern[:30]}...)"
        for pat in _SECRET_PATTERNS
        if pat.search(text)
    ]


@rule(
    "ec2-no-secrets-in-user-data",
    "User data holds no credential",
    ("Checkov CKV_AWS_46", "Trivy AVD-AWS-0029"),
    (EC2,),
    "critical",
)
def ec2_no_secrets(t: str, p: Props, c: Context) -> list[str]:
    return [f"user data {m}" for m in secret_findings(str(p.get("userData") or ""))]


@rule(
    "ec2-ebs-optimized", "EC2 instances are EBS-optimized", ("Checkov CKV_AWS_135",), (EC2,), "low"
)
def ec2_ebs_optimized(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("ebsOptimized") else ["ebsOptimized is off"]


@rule(
    "ec2-detailed-monitoring",
    "EC2 instances have detailed monitoring",
    ("Checkov CKV_AWS_126",),
    (EC2,),
    "low",
)
def ec2_monitoring(t: str, p: Props, c: Context) -> list[str]:
    return (
        ["detailed monitoring is off in production"]
        if c.production and not p.get("monitoring")
        else []
    )


@rule(
    "ec2-instance-profile",
    "EC2 instances run with an IAM instance profile (for SSM and scoped access)",
    ("Checkov CKV2_AWS_41", "FSBP SSM.1"),
    (EC2,),
    "medium",
)
def ec2_profile(t: str, p: Props, c: Context) -> list[str]:
    return (
        []
        if p.get("iamInstanceProfile")
        else ["no iamInstanceProfile: no SSM and no scoped credentials"]
    )


@rule(
    "ec2-no-ssh-key-pair",
    "EC2 instances carry no long-lived SSH key pair (SSM or EC2 Instance Connect instead)",
    ("mdp: SSM-only admin access", "FSBP SSM.1"),
    (EC2,),
    "medium",
)
def ec2_no_keypair(t: str, p: Props, c: Context) -> list[str]:
    return [f"keyName {p['keyName']!r} is set"] if p.get("keyName") else []


@rule(
    "kms-key-rotation",
    "KMS keys rotate yearly",
    ("Checkov CKV_AWS_7", "Trivy AVD-AWS-0065", "FSBP KMS.4"),
    (KMS_KEY,),
    "medium",
)
def kms_rotation(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("enableKeyRotation") else ["enableKeyRotation is off"]


@rule(
    "log-group-encrypted",
    "CloudWatch log groups are encrypted with KMS",
    ("Checkov CKV_AWS_158", "Trivy AVD-AWS-0017"),
    (LOG_GROUP,),
    "medium",
)
def log_group_kms(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("kmsKeyId") else ["no kmsKeyId"]


@rule(
    "log-group-retention",
    "CloudWatch log groups have a finite retention (1 year in production)",
    ("Checkov CKV_AWS_66", "Checkov CKV_AWS_338", "FSBP CloudWatch.16"),
    (LOG_GROUP,),
    "low",
)
def log_group_retention(t: str, p: Props, c: Context) -> list[str]:
    days = int(p.get("retentionInDays") or 0)
    if days <= 0:
        return ["retentionInDays is not set: logs are kept and billed forever"]
    return ["retention is below 365 days in production"] if c.production and days < 365 else []


@rule(
    "secret-encrypted-with-cmk",
    "Secrets Manager secrets use the stack's customer-managed KMS key",
    ("Checkov CKV_AWS_149", "Trivy AVD-AWS-0098"),
    (SECRET,),
    "medium",
)
def secret_cmk(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("kmsKeyId") else ["no kmsKeyId: encrypted with the AWS-managed key"]


@rule(
    "s3-public-access-blocked",
    "All four S3 public access block settings are on",
    (
        "Checkov CKV_AWS_53",
        "Checkov CKV_AWS_54",
        "Checkov CKV_AWS_55",
        "Checkov CKV_AWS_56",
        "Trivy AVD-AWS-0086",
        "FSBP S3.8",
    ),
    (PAB,),
    "critical",
)
def s3_public_block(t: str, p: Props, c: Context) -> list[str]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    return [f"{k} is not true" for k in keys if not p.get(k)]


@rule(
    "s3-default-encryption",
    "S3 default encryption is on (KMS, or SSE-S3 for the access-log bucket)",
    ("Checkov CKV_AWS_19", "Checkov CKV_AWS_145", "Trivy AVD-AWS-0088"),
    (SSE,),
)
def s3_encryption(t: str, p: Props, c: Context) -> list[str]:
    algos = [
        ((r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
        for r in _list(p.get("rules"))
    ]
    return (
        []
        if algos and all(a in ("aws:kms", "aws:kms:dsse", "AES256") for a in algos)
        else ["no default encryption rule"]
    )


@rule(
    "s3-versioning",
    "S3 versioning is enabled",
    ("Checkov CKV_AWS_21", "Trivy AVD-AWS-0090", "FSBP S3.14"),
    (VERSIONING,),
    "medium",
)
def s3_versioning(t: str, p: Props, c: Context) -> list[str]:
    status = (p.get("versioningConfiguration") or {}).get("status")
    return [] if status == "Enabled" else [f"versioning status is {status!r}"]


@rule(
    "s3-tls-only",
    "S3 bucket policies deny requests without TLS",
    ("FSBP S3.5",),
    (BUCKET_POLICY,),
)
def s3_tls_only(t: str, p: Props, c: Context) -> list[str]:
    try:
        doc = json.loads(p.get("policy") or "{}")
    except (TypeError, ValueError):
        return ["policy is not valid JSON"]
    for s in _list(doc.get("Statement")):
        cond = (s.get("Condition") or {}).get("Bool") or {}
        if s.get("Effect") == "Deny" and str(cond.get("aws:SecureTransport")).lower() == "false":
            return []
    return ["no Deny statement on aws:SecureTransport=false"]


@rule(
    "s3-acls-disabled",
    "S3 object ownership is BucketOwnerEnforced (ACLs off)",
    ("Checkov CKV2_AWS_65", "FSBP S3.12"),
    (OWNERSHIP,),
    "medium",
)
def s3_acls_disabled(t: str, p: Props, c: Context) -> list[str]:
    owner = (p.get("rule") or {}).get("objectOwnership")
    return [] if owner == "BucketOwnerEnforced" else [f"objectOwnership is {owner!r}"]


def _children(resources: Sequence[Resource], bucket: Resource, type_: str) -> list[Resource]:
    # Linked by the component naming convention (children are named f"{bucket}-..."), which
    # holds in preview too, when the bucket id is still unknown.
    return [r for r in resources if r.type == type_ and r.name.startswith(f"{bucket.name}-")]


@stack_rule(
    "s3-bucket-hardened",
    "Every bucket has a public access block, default encryption, versioning, a TLS-only policy and (except the log bucket) access logging",
    ("Checkov CKV_AWS_18", "Checkov CKV2_AWS_6", "Trivy AVD-AWS-0089", "FSBP S3.9", "FSBP S3.8"),
)
def s3_bucket_hardened(resources: Sequence[Resource], c: Context) -> list[Violation]:
    found: list[Violation] = []
    buckets = [r for r in resources if r.type in (BUCKET, BUCKET_V2)]
    log_targets = {str(r.props.get("targetBucket")) for r in resources if r.type == LOGGING}
    for b in buckets:
        for type_, what in (
            (PAB, "public access block"),
            (SSE, "default encryption"),
            (VERSIONING, "versioning"),
            (BUCKET_POLICY, "TLS-only policy"),
        ):
            if not _children(resources, b, type_):
                found.append(Violation("s3-bucket-hardened", b.name, f"no {what}"))
        is_log_target = str(b.props.get("bucket")) in log_targets or "access-logs" in b.name
        if not is_log_target and not _children(resources, b, LOGGING):
            found.append(Violation("s3-bucket-hardened", b.name, "no server access logging"))
    return found


def _statements(policy: Any) -> list[Mapping[str, Any]]:
    try:
        doc = json.loads(policy) if isinstance(policy, str) else (policy or {})
    except ValueError:
        return []
    return [s for s in _list(doc.get("Statement")) if isinstance(s, Mapping)]


@rule(
    "iam-no-wildcard-actions",
    "IAM policies grant no '*' or 'service:*' actions",
    ("Checkov CKV_AWS_62", "Checkov CKV_AWS_290", "Trivy AVD-AWS-0057", "FSBP IAM.21"),
    (ROLE_POLICY, POLICY),
)
def iam_no_wildcards(t: str, p: Props, c: Context) -> list[str]:
    out = []
    for s in _statements(p.get("policy")):
        if s.get("Effect") != "Allow":
            continue
        for action in _list(s.get("Action")):
            if action == "*" or str(action).endswith(":*"):
                out.append(f"statement {s.get('Sid', '?')} allows {action}")
    return out


@rule(
    "iam-secrets-named",
    "Secret reads and data access name their resources, never '*'",
    ("Checkov CKV_AWS_355", "Checkov CKV_AWS_288", "FSBP IAM.21"),
    (ROLE_POLICY, POLICY),
    "critical",
)
def iam_named_resources(t: str, p: Props, c: Context) -> list[str]:
    out = []
    sensitive = (
        "secretsmanager:",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "ssm:GetParameter",
    )
    for s in _statements(p.get("policy")):
        actions = [str(a) for a in _list(s.get("Action"))]
        if s.get("Effect") == "Allow" and any(a.startswith(sensitive) for a in actions):
            for res in _list(s.get("Resource")):
                if res == "*" or str(res).endswith(":secret:*") or str(res) == "arn:aws:s3:::*":
                    out.append(
                        f"statement {s.get('Sid', '?')} allows {', '.join(actions)} on {res}"
                    )
    return out


@rule(
    "iam-trust-no-wildcard-principal",
    "Role trust policies name their principal",
    ("Checkov CKV_AWS_60", "Checkov CKV_AWS_61"),
    (ROLE,),
    "critical",
)
def iam_trust(t: str, p: Props, c: Context) -> list[str]:
    out = []
    for s in _statements(p.get("assumeRolePolicy")):
        principal = s.get("Principal")
        values = _list(principal.get("AWS")) if isinstance(principal, Mapping) else [principal]
        if s.get("Effect") == "Allow" and "*" in values:
            out.append("trust policy allows any principal ('*')")
    return out


@rule(
    "sns-topic-encrypted-with-cmk",
    "SNS topics are encrypted with the stack's customer-managed KMS key",
    ("Checkov CKV_AWS_26", "Trivy AVD-AWS-0095", "Trivy AVD-AWS-0136", "FSBP SNS.1"),
    (SNS_TOPIC,),
)
def sns_encrypted(t: str, p: Props, c: Context) -> list[str]:
    key = p.get("kmsMasterKeyId")
    if not key:
        return ["kmsMasterKeyId is not set: the topic is not encrypted at rest"]
    if str(key) == "alias/aws/sns":
        return ["encrypted with the AWS-managed alias/aws/sns key, not the stack's key"]
    return []


@rule(
    "cloudwatch-alarm-has-action",
    "Every CloudWatch alarm notifies or acts when it fires, with its actions enabled",
    ("FSBP CloudWatch.15", "FSBP CloudWatch.17"),
    (ALARM,),
    "medium",
)
def alarm_actions(t: str, p: Props, c: Context) -> list[str]:
    out = []
    if not _list(p.get("alarmActions")):
        out.append("alarm has no alarmActions: it would fire silently")
    if p.get("actionsEnabled") is False:
        out.append("actionsEnabled is false")
    return out


@rule(
    "sns-subscription-https",
    "Webhook subscriptions deliver over HTTPS only",
    ("mdp: alerts leave AWS over TLS only", "FSBP SNS (data in transit)"),
    (SNS_SUBSCRIPTION,),
)
def subscription_https(t: str, p: Props, c: Context) -> list[str]:
    if str(p.get("protocol", "")).lower() == "http":
        return ["protocol is http: alerts would cross the internet in clear text; use https"]
    endpoint = p.get("endpoint")
    if (
        str(p.get("protocol", "")).lower() == "https"
        and isinstance(endpoint, str)
        and not endpoint.startswith("https://")
    ):
        return ["https subscription to an endpoint that is not an https:// URL"]
    return []


def _recovers(alarm: Resource) -> bool:
    actions = [str(a) for a in _list(alarm.props.get("alarmActions"))]
    return alarm.props.get("metricName") == "StatusCheckFailed_System" and any(
        a.startswith("arn:aws:automate:") and a.endswith(":ec2:recover") for a in actions
    )


@stack_rule(
    "prod-host-status-alarms",
    "In prod, once alerts are configured, every EC2 host has a system status-check alarm that recovers it",
    ("mdp: hosts recover from hardware failure (AWS Well-Architected REL11)",),
)
def host_status_alarms(resources: Sequence[Resource], c: Context) -> list[Violation]:
    # Keyed on the alert topic: a stack without `mdp:alerts` has no one to tell.
    if not c.production or not any(r.type == SNS_TOPIC for r in resources):
        return []
    hosts = [r for r in resources if r.type == EC2]
    recovering = [r for r in resources if r.type == ALARM and _recovers(r)]
    # Instance ids are unknown in a preview, so hosts and alarms are matched by count.
    if len(recovering) >= len(hosts):
        return []
    return [
        Violation(
            "prod-host-status-alarms",
            h.name,
            f"{len(hosts)} EC2 hosts but {len(recovering)} StatusCheckFailed_System alarms "
            "with the ec2:recover action",
        )
        for h in hosts
    ]


# The stack's alerts: once it declares a topic, everything the alerts cover publishes to it.
_ALERTS_SOURCE = "mdp: every failure that needs a person reaches one (AWS Well-Architected REL06)"


def _topics(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.type == SNS_TOPIC]


def _names_a_topic(value: Any, topics: Sequence[Resource]) -> bool:
    """Whether an ARN names one of the stack's topics (by its ARN, or by its name at the end).

    A topic's ARN is unknown in a preview of its first deploy; the policy engine then skips the
    stack rules that read it, and they run in full at `pulumi up`.
    """
    if not isinstance(value, str):
        return False
    for topic in topics:
        arn = topic.props.get("arn")
        name = str(topic.props.get("name") or "")
        if (isinstance(arn, str) and value == arn) or (name and value.endswith(f":{name}")):
            return True
    return False


def _notifies_a_topic(values: Any, topics: Sequence[Resource]) -> bool:
    return any(_names_a_topic(v, topics) for v in _list(values))


@stack_rule(
    "alerts-topic-subscribed",
    "Once alerts are configured, the alert topic has at least one subscription",
    (_ALERTS_SOURCE, "mdp: a topic nobody subscribes to alerts no one"),
)
def alerts_topic_subscribed(resources: Sequence[Resource], c: Context) -> list[Violation]:
    subscriptions = [r.props.get("topic") for r in resources if r.type == SNS_SUBSCRIPTION]
    return [
        Violation(
            "alerts-topic-subscribed",
            topic.name,
            "no subscription delivers from this topic: its alarms and budget would reach no one "
            "(set mdp:alerts.emails or mdp:alerts.webhookUrl)",
        )
        for topic in _topics(resources)
        if not any(_names_a_topic(s, [topic]) for s in subscriptions)
    ]


@stack_rule(
    "alerts-alarms-notify-the-topic",
    "Once alerts are configured, every CloudWatch alarm notifies the stack's alert topic",
    (_ALERTS_SOURCE, "FSBP CloudWatch.15"),
)
def alarms_notify_topic(resources: Sequence[Resource], c: Context) -> list[Violation]:
    topics = _topics(resources)
    if not topics:
        return []
    return [
        Violation(
            "alerts-alarms-notify-the-topic",
            a.name,
            "alarmActions do not include the stack's alert topic: it would fire unseen",
        )
        for a in resources
        if a.type == ALARM and not _notifies_a_topic(a.props.get("alarmActions"), topics)
    ]


def _is_alarm(
    r: Resource, namespace: str, metric: str, dimensions: Mapping[str, Any] | None = None
) -> bool:
    if r.type != ALARM or (r.props.get("namespace"), r.props.get("metricName")) != (
        namespace,
        metric,
    ):
        return False
    dims = r.props.get("dimensions") or {}
    for key, wanted in (dimensions or {}).items():
        got = dims.get(key)
        # Compared when the program names it (the RDS identifier); else present is enough.
        if got is None or (isinstance(got, str) and isinstance(wanted, str) and got != wanted):
            return False
    return True


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# The alarms every RDS instance carries: (metric, what it watches).
_RDS_ALARMS: tuple[tuple[str, str], ...] = (
    ("FreeStorageSpace", "free storage under 20% of the allocated storage"),
    ("CPUUtilization", "CPU over 80%"),
    ("DatabaseConnections", "connections near the instance's limit"),
)


def _rds_threshold_ok(metric: str, alarm: Resource, db: Resource) -> bool:
    threshold = _number(alarm.props.get("threshold"))
    if threshold is None:
        return True
    if metric == "FreeStorageSpace":
        gb = _number(db.props.get("allocatedStorage"))
        return gb is None or threshold >= 0.2 * gb * 1024**3
    if metric == "CPUUtilization":
        return threshold <= 80
    return True


@stack_rule(
    "alerts-database-alarms",
    "Once alerts are configured, every RDS instance has alarms on free storage (20%), CPU (80%) and connections",
    (_ALERTS_SOURCE, "mdp: RDS runs out of disk, CPU or connections loudly"),
)
def database_alarms(resources: Sequence[Resource], c: Context) -> list[Violation]:
    if not _topics(resources):
        return []
    found = []
    for db in (r for r in resources if r.type == RDS):
        dims = {"DBInstanceIdentifier": db.props.get("identifier")}
        for metric, what in _RDS_ALARMS:
            alarms = [r for r in resources if _is_alarm(r, "AWS/RDS", metric, dims)]
            if not any(_rds_threshold_ok(metric, a, db) for a in alarms):
                found.append(
                    Violation(
                        "alerts-database-alarms",
                        db.name,
                        f"no {metric} alarm on this instance for {what}",
                    )
                )
    return found


def _is_airflow_host(r: Resource) -> bool:
    name = str((r.props.get("tags") or {}).get("Name") or r.name)
    return r.type == EC2 and (name.endswith("-airflow") or r.name.startswith("airflow-"))


@stack_rule(
    "alerts-airflow-alarms",
    "Once alerts are configured, Airflow is watched: the host's root disk at 80% (engine ec2), or MWAA's scheduler heartbeat (engine mwaa)",
    (_ALERTS_SOURCE, "mdp: a stopped scheduler or a full disk stops every run"),
)
def airflow_alarms(resources: Sequence[Resource], c: Context) -> list[Violation]:
    if not _topics(resources):
        return []
    found = []
    hosts = [r for r in resources if _is_airflow_host(r)]
    # The CloudWatch agent's metric; instance ids are unknown in a preview, so matched by count.
    disk = [
        a
        for a in resources
        if _is_alarm(a, "CWAgent", "disk_used_percent", {"path": "/"})
        and (_number(a.props.get("threshold")) or 0) <= 80
    ]
    if len(disk) < len(hosts):
        found += [
            Violation(
                "alerts-airflow-alarms",
                h.name,
                "the Airflow host has no root-disk alarm (CWAgent disk_used_percent on / at 80% "
                "or less)",
            )
            for h in hosts
        ]
    for env in (r for r in resources if r.type == MWAA):
        dims = {"Environment": env.props.get("name")}
        if not any(_is_alarm(a, "AmazonMWAA", "SchedulerHeartbeat", dims) for a in resources):
            found.append(
                Violation(
                    "alerts-airflow-alarms",
                    env.name,
                    "no SchedulerHeartbeat alarm on this MWAA environment: a stopped scheduler "
                    "would go unnoticed",
                )
            )
    return found


# (notificationType, the highest threshold in percent that still warns in time)
_BUDGET_NOTIFICATIONS: tuple[tuple[str, float], ...] = (("FORECASTED", 80), ("ACTUAL", 100))


def _budget_problems(budget: Resource, topics: Sequence[Resource]) -> list[str]:
    p = budget.props
    out = []
    if (p.get("budgetType"), p.get("timeUnit")) != ("COST", "MONTHLY"):
        out.append(f"is a {p.get('timeUnit')} {p.get('budgetType')} budget, not a MONTHLY COST one")
    notifications = [n for n in _list(p.get("notifications")) if isinstance(n, Mapping)]
    for kind, highest in _BUDGET_NOTIFICATIONS:
        ok = any(
            n.get("notificationType") == kind
            and n.get("thresholdType", "PERCENTAGE") == "PERCENTAGE"
            and (_number(n.get("threshold")) or 0) <= highest
            and _list(n.get("subscriberSnsTopicArns"))
            and _notifies_a_topic(n.get("subscriberSnsTopicArns"), topics)
            for n in notifications
        )
        if not ok:
            out.append(
                f"no {kind} notification at {highest:.0f}% (or less) sent to the alert topic"
            )
    return out


@stack_rule(
    "alerts-monthly-budget",
    "Once alerts are configured, a monthly cost budget notifies the topic at 80% forecast and 100% actual",
    ("mdp: the bill never surprises (AWS Well-Architected COST01)",),
)
def monthly_budget(resources: Sequence[Resource], c: Context) -> list[Violation]:
    topics = _topics(resources)
    if not topics:
        return []
    budgets = [r for r in resources if r.type == BUDGET]
    problems = {b.name: _budget_problems(b, topics) for b in budgets}
    if any(not found for found in problems.values()):
        return []
    if not budgets:
        return [
            Violation(
                "alerts-monthly-budget",
                topics[0].name,
                "the stack has an alert topic but no AWS budget",
            )
        ]
    return [
        Violation("alerts-monthly-budget", name, f"budget {m}")
        for name, found in problems.items()
        for m in found
    ]


MWAA_LOG_TYPES = (
    "dagProcessingLogs",
    "schedulerLogs",
    "taskLogs",
    "webserverLogs",
    "workerLogs",
)
_MWAA_SOURCE = "mdp: AWS MWAA security guidance"


@rule(
    "mwaa-private-webserver",
    "The MWAA web server is reachable from the VPC only (PRIVATE_ONLY)",
    ("FSBP MWAA.3", _MWAA_SOURCE),
    (MWAA,),
    "critical",
)
def mwaa_private_webserver(t: str, p: Props, c: Context) -> list[str]:
    mode = p.get("webserverAccessMode") or "PRIVATE_ONLY"
    return [] if mode == "PRIVATE_ONLY" else [f"webserverAccessMode is {mode}"]


@rule(
    "mwaa-kms-key",
    "MWAA encrypts its data with the stack's customer-managed KMS key",
    (_MWAA_SOURCE,),
    (MWAA,),
)
def mwaa_kms_key(t: str, p: Props, c: Context) -> list[str]:
    return [] if p.get("kmsKey") else ["no kmsKey: MWAA uses an AWS-owned key"]


@rule(
    "mwaa-logs-on",
    "MWAA sends every log type (DAG processing, scheduler, task, web server, worker) to CloudWatch",
    ("FSBP MWAA.4", _MWAA_SOURCE),
    (MWAA,),
)
def mwaa_logs_on(t: str, p: Props, c: Context) -> list[str]:
    logging = p.get("loggingConfiguration") or {}
    return [
        f"{kind} is not enabled"
        for kind in MWAA_LOG_TYPES
        if not (logging.get(kind) or {}).get("enabled")
    ]


@stack_rule(
    "mwaa-source-bucket-private",
    "MWAA's source bucket (airflow-*) blocks every kind of public access",
    ("FSBP S3.8", _MWAA_SOURCE),
    "critical",
)
def mwaa_source_bucket_private(resources: Sequence[Resource], c: Context) -> list[Violation]:
    if not any(r.type == MWAA for r in resources):
        return []
    blocks = {r.name: r.props for r in resources if r.type == PAB}
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    found = []
    for bucket in resources:
        name = str(bucket.props.get("bucket") or bucket.props.get("bucketPrefix") or "")
        if bucket.type != BUCKET or not name.startswith("airflow-"):
            continue
        block = blocks.get(f"{bucket.name}-public-access-block")
        missing = [f for f in flags if not (block or {}).get(f)]
        if missing:
            found.append(
                Violation(
                    "mwaa-source-bucket-private",
                    bucket.name,
                    f"MWAA source bucket allows public access ({', '.join(missing)} not set)",
                )
            )
    return found


@rule(
    "mwaa-secrets-named",
    "MWAA's execution role reads named secrets only, no wildcard",
    ("Checkov CKV_AWS_355", _MWAA_SOURCE),
    (ROLE_POLICY, POLICY),
    "critical",
)
def mwaa_secrets_named(t: str, p: Props, c: Context) -> list[str]:
    statements = _statements(p.get("policy"))
    is_mwaa = any(
        "airflow:PublishMetrics" in [str(a) for a in _list(s.get("Action"))] for s in statements
    )
    if not is_mwaa:
        return []
    out = []
    for s in statements:
        actions = [str(a) for a in _list(s.get("Action"))]
        if s.get("Effect") != "Allow" or not any(a.startswith("secretsmanager:") for a in actions):
            continue
        for res in _list(s.get("Resource")):
            if "*" in str(res):
                out.append(f"statement {s.get('Sid', '?')} reads secrets through {res}")
    return out


def output_violations(
    outputs: dict[str, Any], secret_names: frozenset[str] | set[str]
) -> list[Violation]:
    """Plain stack outputs must not carry a credential (a URI with a password, a key, a password)."""
    found = []
    for name, value in outputs.items():
        if name in secret_names:
            continue
        for m in secret_findings(json.dumps(value) if not isinstance(value, str) else value):
            found.append(
                Violation(
                    "outputs-credentials-secret",
                    name,
                    f"plain output {m}; wrap it in Output.secret",
                )
            )
    return found
