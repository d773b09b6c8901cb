"""Snowflake rules, mirroring the CIS Snowflake benchmark and the provider's guidance, plus mdp's cost guard."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.policies.rules import REGISTRY, Context, Props, Resource, Violation

# Resource type tokens, as the engine and the policy pack see them.
PROVIDER = "pulumi:providers:snowflake"
DATABASE = "snowflake:index/database:Database"
SCHEMA = "snowflake:index/schema:Schema"
ACCOUNT_ROLE = "snowflake:index/accountRole:AccountRole"
GRANT_ACCOUNT_ROLE = "snowflake:index/grantAccountRole:GrantAccountRole"
GRANT_DATABASE_ROLE = "snowflake:index/grantDatabaseRole:GrantDatabaseRole"
GRANT_TO_ACCOUNT_ROLE = "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"
GRANT_TO_DATABASE_ROLE = (
    "snowflake:index/grantPrivilegesToDatabaseRole:GrantPrivilegesToDatabaseRole"
)
GRANT_OWNERSHIP = "snowflake:index/grantOwnership:GrantOwnership"
WAREHOUSE = "snowflake:index/warehouse:Warehouse"
RESOURCE_MONITOR = "snowflake:index/resourceMonitor:ResourceMonitor"
SERVICE_USER = "snowflake:index/serviceUser:ServiceUser"
LEGACY_SERVICE_USER = "snowflake:index/legacyServiceUser:LegacyServiceUser"
USER = "snowflake:index/user:User"
NETWORK_RULE = "snowflake:index/networkRule:NetworkRule"
NETWORK_POLICY = "snowflake:index/networkPolicy:NetworkPolicy"
TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"

# Snowflake's administrative roles: the program never grants them to anyone.
ADMIN_ROLES = frozenset(
    {"ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "ORGADMIN", "GLOBALORGADMIN"}
)
SYSTEM_ROLES = ADMIN_ROLES | {"SYSADMIN", "PUBLIC"}

MAX_AUTO_SUSPEND_SECONDS = 60
# Snowflake's default is 172800 (two days); four hours is the most a daily batch needs. The
# `mdp:snowflake` config takes this as its ceiling too.
MAX_STATEMENT_TIMEOUT_SECONDS = 4 * 3600
ALLOWED_WAREHOUSE_SIZES = frozenset({"XSMALL", "X-SMALL", "SMALL", "MEDIUM"})
MIN_RSA_BITS = 2048
NARROWEST_ALLOWED_PREFIX = 16

rule = REGISTRY.resource_rule
stack_rule = REGISTRY.stack_rule

Violations = list[str]


def _ident(value: Any) -> str:
    """`"RAW"."POSTGRES_AIRBYTE"` and `RAW.POSTGRES_AIRBYTE` compare equal."""
    return ".".join(part.strip().strip('"') for part in str(value or "").split("."))


def _number(value: Any) -> float | None:
    """Engine properties arrive as JSON numbers (floats); booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _show(value: float | None) -> str:
    return "unset" if value is None else f"{value:g}"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


# --- resource rules -------------------------------------------------------------------


@rule(
    "snowflake-service-users-use-key-pairs",
    "Users are TYPE=SERVICE with an RSA public key and no password",
    ("CIS Snowflake 1.6", "Snowflake TYPE=SERVICE users"),
    (SERVICE_USER, USER, LEGACY_SERVICE_USER),
)
def service_users_use_key_pairs(t: str, p: Props, c: Context) -> Violations:
    if t in (USER, LEGACY_SERVICE_USER):
        return ["declare machine users as snowflake.ServiceUser (TYPE=SERVICE)"]
    found = []
    if not str(p.get("rsaPublicKey") or "").strip():
        found.append("service user has no RSA public key")
    if p.get("password"):
        found.append("service user has a password; use key-pair sign-in only")
    return found


@rule(
    "snowflake-service-users-rotate-keys",
    "Every service user has its second key slot set, so its key rotates without downtime",
    ("Snowflake key-pair rotation (RSA_PUBLIC_KEY_2)", "mdp: snowflake.keyRotationDays"),
    (SERVICE_USER,),
)
def service_users_rotate_keys(t: str, p: Props, c: Context) -> Violations:
    if str(p.get("rsaPublicKey2") or "").strip():
        return []
    return [
        "service user has no second RSA key (rsaPublicKey2): its key cannot be replaced "
        "without signing its consumers out"
    ]


@rule(
    "snowflake-service-users-have-network-policy",
    "Every service user signs in only from the networks its policy allows",
    ("CIS Snowflake 3.2",),
    (SERVICE_USER,),
)
def service_users_have_network_policy(t: str, p: Props, c: Context) -> Violations:
    return [] if p.get("networkPolicy") else ["service user has no network policy"]


@rule(
    "snowflake-service-users-have-narrow-defaults",
    "A service user's default role is a functional role and secondary roles are off",
    ("CIS Snowflake 1.12", "mdp: secondary roles off"),
    (SERVICE_USER,),
)
def service_users_have_narrow_defaults(t: str, p: Props, c: Context) -> Violations:
    found = []
    role = _ident(p.get("defaultRole")).upper()
    if not role or role in SYSTEM_ROLES:
        found.append(f"default role {role or '(none)'} is not a functional role")
    if str(p.get("defaultSecondaryRolesOption") or "").upper() != "NONE":
        found.append("default secondary roles must be NONE")
    return found


@rule(
    "snowflake-no-admin-role-grants",
    "No role or user is granted ACCOUNTADMIN, SECURITYADMIN, USERADMIN or ORGADMIN",
    ("CIS Snowflake 1.10", "CIS Snowflake 1.13"),
    (GRANT_ACCOUNT_ROLE, GRANT_TO_ACCOUNT_ROLE),
)
def no_admin_role_grants(t: str, p: Props, c: Context) -> Violations:
    if t == GRANT_ACCOUNT_ROLE:
        role = _ident(p.get("roleName")).upper()
        if role in ADMIN_ROLES:
            grantee = p.get("parentRoleName") or p.get("userName")
            return [f"grants {role} to {grantee}"]
    if t == GRANT_TO_ACCOUNT_ROLE and _truthy(p.get("onAccount")):
        return [f"grants account-level privileges {p.get('privileges')}"]
    return []


@rule(
    "snowflake-grants-are-explicit",
    "Grants list their privileges explicitly, in the canonical form that causes no diffs",
    ("Snowflake provider grant migration guide", "mdp: no diffs"),
    (GRANT_TO_ACCOUNT_ROLE, GRANT_TO_DATABASE_ROLE),
)
def grants_are_explicit(t: str, p: Props, c: Context) -> Violations:
    found = []
    privileges = list(p.get("privileges") or [])
    if _truthy(p.get("allPrivileges")):
        found.append("grants ALL PRIVILEGES")
    if not privileges and not _truthy(p.get("allPrivileges")):
        found.append("grants no explicit privileges")
    if "OWNERSHIP" in (x.upper() for x in privileges):
        found.append("grants OWNERSHIP; objects are owned by the role creating them")
    if _truthy(p.get("withGrantOption")):
        found.append("grants WITH GRANT OPTION")
    if _truthy(p.get("alwaysApply")):
        found.append("always_apply re-grants on every run (a permanent diff)")
    if privileges != sorted({x.upper() for x in privileges}):
        found.append(f"privileges {privileges} are not upper-case, sorted and unique")
    return found


@rule(
    "snowflake-no-ownership-transfers",
    "Ownership is never transferred by the program",
    ("Snowflake provider grant_ownership caveats",),
    (GRANT_OWNERSHIP,),
)
def no_ownership_transfers(t: str, p: Props, c: Context) -> Violations:
    return ["GrantOwnership takes objects away from the role that manages them"]


@rule(
    "snowflake-warehouse-suspends-when-idle",
    "Warehouses auto-suspend within 60 s, auto-resume, and start suspended",
    ("mdp: cost guard", "Snowflake warehouse practices"),
    (WAREHOUSE,),
)
def warehouse_suspends_when_idle(t: str, p: Props, c: Context) -> Violations:
    found = []
    suspend = _number(p.get("autoSuspend"))
    if suspend is None or not 0 < suspend <= MAX_AUTO_SUSPEND_SECONDS:
        found.append(f"auto_suspend is {_show(suspend)}, not 1-{MAX_AUTO_SUSPEND_SECONDS} s")
    if not _truthy(p.get("autoResume")):
        found.append("auto_resume is not true")
    if not _truthy(p.get("initiallySuspended")):
        found.append("not initially suspended")
    return found


@rule(
    "snowflake-warehouse-has-resource-monitor",
    "Every warehouse is attached to a resource monitor",
    ("mdp: cost guard", "Snowflake resource monitors"),
    (WAREHOUSE,),
)
def warehouse_has_resource_monitor(t: str, p: Props, c: Context) -> Violations:
    return [] if p.get("resourceMonitor") else ["warehouse has no resource monitor"]


@rule(
    "snowflake-warehouse-statement-timeout",
    "Statements time out well below Snowflake's two-day default",
    ("mdp: cost guard", "STATEMENT_TIMEOUT_IN_SECONDS"),
    (WAREHOUSE,),
)
def warehouse_statement_timeout(t: str, p: Props, c: Context) -> Violations:
    timeout = _number(p.get("statementTimeoutInSeconds"))
    if timeout is None or not 0 < timeout <= MAX_STATEMENT_TIMEOUT_SECONDS:
        return [f"statement timeout is {_show(timeout)}, not 1-{MAX_STATEMENT_TIMEOUT_SECONDS} s"]
    return []


@rule(
    "snowflake-warehouse-size-capped",
    "Warehouse size is explicit and at most MEDIUM",
    ("mdp: cost guard",),
    (WAREHOUSE,),
)
def warehouse_size_capped(t: str, p: Props, c: Context) -> Violations:
    size = str(p.get("warehouseSize") or "").upper()
    if size not in ALLOWED_WAREHOUSE_SIZES:
        return [f"warehouse size {size or '(default)'} is not one of XSMALL..MEDIUM"]
    return []


@rule(
    "snowflake-resource-monitor-thresholds",
    "A credit quota, notifications at 75% and 90%, and suspension at 100%",
    ("mdp: cost guard", "Snowflake resource monitors"),
    (RESOURCE_MONITOR,),
)
def resource_monitor_thresholds(t: str, p: Props, c: Context) -> Violations:
    found = []
    quota = _number(p.get("creditQuota"))
    if quota is None or quota <= 0:
        found.append("no positive credit quota")
    notify = {int(x) for x in p.get("notifyTriggers") or []}
    if not {75, 90} <= notify:
        found.append(f"notify triggers {sorted(notify)} lack 75 and 90")
    suspend = _number(p.get("suspendTrigger"))
    if suspend != 100:
        found.append(f"suspend trigger is {_show(suspend)}, not 100")
    return found


@rule(
    "snowflake-network-rules-are-narrow",
    "Ingress rules list specific IPv4 addresses, never the internet",
    ("CIS Snowflake 3.2", "mdp: no open ingress"),
    (NETWORK_RULE,),
)
def network_rules_are_narrow(t: str, p: Props, c: Context) -> Violations:
    found = []
    if str(p.get("type")).upper() != "IPV4" or str(p.get("mode")).upper() != "INGRESS":
        found.append("network rule must be IPV4 INGRESS")
    values = list(p.get("valueLists") or [])
    if not values:
        found.append("network rule allows no address")
    for value in values:
        try:
            network = ipaddress.IPv4Network(str(value), strict=False)
        except ValueError:
            found.append(f"{value!r} is not an IPv4 address or CIDR")
            continue
        if network.prefixlen < NARROWEST_ALLOWED_PREFIX:
            found.append(f"{value} is broader than /{NARROWEST_ALLOWED_PREFIX}")
    return found


@rule(
    "snowflake-network-policies-use-rules",
    "Network policies allow network rules, not ad-hoc or open IP lists",
    ("Snowflake network rules",),
    (NETWORK_POLICY,),
)
def network_policies_use_rules(t: str, p: Props, c: Context) -> Violations:
    found = []
    if not p.get("allowedNetworkRuleLists"):
        found.append("network policy allows no network rule")
    if p.get("allowedIpLists"):
        found.append("network policy uses allowed_ip_lists; use network rules")
    return found


@rule(
    "snowflake-rsa-keys-are-strong",
    "Key pairs are RSA with at least 2048 bits",
    ("Snowflake key-pair authentication: RSA 2048+",),
    (TLS_PRIVATE_KEY,),
)
def rsa_keys_are_strong(t: str, p: Props, c: Context) -> Violations:
    bits = _number(p.get("rsaBits"))
    if str(p.get("algorithm")).upper() != "RSA" or bits is None or bits < MIN_RSA_BITS:
        return [f"key must be RSA with >= {MIN_RSA_BITS} bits, got {_show(bits)}"]
    return []


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# Where private key material legitimately appears: the key itself, the secret holding it,
# and the deploying identity's provider configuration (all stored encrypted as secrets).
# Airbyte's source (SSH tunnel key) and destination (Snowflake key) must send a key to Airbyte;
# the dynamic provider takes it as a secret input and never outputs it.
AIRBYTE_KEY_HOLDERS = frozenset(
    {
        "pulumi-python:dynamic/airbyte:PostgresSource",
        "pulumi-python:dynamic/airbyte:SnowflakeDestination",
    }
)
_KEY_HOLDERS = frozenset({TLS_PRIVATE_KEY, SECRET_VERSION, PROVIDER}) | AIRBYTE_KEY_HOLDERS


@rule(
    "snowflake-no-plaintext-private-keys",
    "Private key material appears only in the key, its secret, and the provider config",
    ("mdp: secrets only as secrets",),
    (),
)
def no_plaintext_private_keys(t: str, p: Props, c: Context) -> Violations:
    if t in _KEY_HOLDERS:
        return []
    if any("PRIVATE KEY-----" in s for s in _strings(p)):
        return [f"a private key appears in the properties of a {t}"]
    return []


@rule(
    "snowflake-provider-uses-key-pair",
    "The deploying identity signs in with a key pair, never a password",
    ("CIS Snowflake 1.6", "Snowflake password sign-in deprecation"),
    (PROVIDER,),
)
def provider_uses_key_pair(t: str, p: Props, c: Context) -> Violations:
    found = []
    if str(p.get("authenticator") or "").upper() != "SNOWFLAKE_JWT":
        found.append("provider authenticator must be SNOWFLAKE_JWT")
    if p.get("password"):
        found.append("provider is configured with a password")
    return found


# --- stack rules ----------------------------------------------------------------------

Grant = tuple[str, str]  # (privilege, object), e.g. ("SELECT", "FUTURE TABLES IN SCHEMA RAW.X")


def expected_grants(prefix: str = "") -> dict[str, frozenset[Grant]]:
    """The grant matrix: everything each functional role holds, and nothing more.

    Mirrors infra/snowflake/naming.py (READ_OBJECT_TYPES, WRITE_PRIVILEGES); why each line is
    needed is in infra/snowflake/needs.py and docs/snowflake-roles.md.
    """
    raw, analytics, dbt_dev = (f"{prefix}{d}" for d in ("RAW", "ANALYTICS", "DBT_DEV"))
    # What each schema holds (readers select it) and what its writers create in it.
    holds = {
        "POSTGRES_AIRBYTE": ("TABLES",),
        "STAGING": ("VIEWS",),
        "INTERMEDIATE": ("TABLES", "VIEWS"),
        "FINANCE": ("TABLES",),
    }
    creates = {
        "POSTGRES_AIRBYTE": ("CREATE FILE FORMAT", "CREATE STAGE", "CREATE TABLE"),
        # Views, plus the temporary tables of dbt's unit tests.
        "STAGING": ("CREATE TABLE", "CREATE VIEW"),
        "INTERMEDIATE": ("CREATE TABLE", "CREATE VIEW"),
        "FINANCE": ("CREATE TABLE",),
    }

    def read(db: str, schema: str) -> set[Grant]:
        target = f"{db}.{schema}"
        grants = {("USAGE", f"DATABASE {db}"), ("USAGE", f"SCHEMA {target}")}
        for scope in ("ALL", "FUTURE"):
            for plural in holds[schema]:
                grants.add(("SELECT", f"{scope} {plural} IN SCHEMA {target}"))
        return grants

    def write(db: str, schema: str) -> set[Grant]:
        target = f"SCHEMA {db}.{schema}"
        return {("USAGE", f"DATABASE {db}"), ("USAGE", target)} | {
            (p, target) for p in creates[schema]
        }

    engineer = read(raw, "POSTGRES_AIRBYTE") | {("USAGE", f"WAREHOUSE {prefix}TRANSFORMING_WH")}
    for db in (analytics, dbt_dev):
        for schema in ("STAGING", "INTERMEDIATE", "FINANCE"):
            engineer |= read(db, schema) | write(db, schema)
    return {
        f"{prefix}AIRBYTE_ROLE": frozenset(
            write(raw, "POSTGRES_AIRBYTE") | {("USAGE", f"WAREHOUSE {prefix}LOADING_WH")}
        ),
        f"{prefix}DATA_ENGINEER": frozenset(engineer),
        f"{prefix}REPORTER": frozenset(
            read(analytics, "FINANCE") | {("USAGE", f"WAREHOUSE {prefix}REPORTING_WH")}
        ),
    }


def allowed_system_role_grants(prefix: str, monitors: Iterable[str]) -> dict[str, set[Grant]]:
    """The only privileges the program grants to Snowflake's own roles."""
    return {
        "SECURITYADMIN": {
            ("USAGE", f"DATABASE {prefix}ADMIN"),
            ("USAGE", f"SCHEMA {prefix}ADMIN.NETWORK"),
            ("CREATE NETWORK RULE", f"SCHEMA {prefix}ADMIN.NETWORK"),
        },
        "SYSADMIN": {(p, f"RESOURCE MONITOR {m}") for m in monitors for p in ("MODIFY", "MONITOR")},
    }


def _target(props: Mapping[str, Any]) -> str:
    if _truthy(props.get("onAccount")):
        return "ACCOUNT"
    if props.get("onDatabase"):
        return f"DATABASE {_ident(props['onDatabase'])}"
    if obj := props.get("onAccountObject"):
        return f"{str(obj.get('objectType')).upper()} {_ident(obj.get('objectName'))}"
    if on_schema := props.get("onSchema"):
        if on_schema.get("schemaName"):
            return f"SCHEMA {_ident(on_schema['schemaName'])}"
        if on_schema.get("allSchemasInDatabase"):
            return f"ALL SCHEMAS IN DATABASE {_ident(on_schema['allSchemasInDatabase'])}"
        if on_schema.get("futureSchemasInDatabase"):
            return f"FUTURE SCHEMAS IN DATABASE {_ident(on_schema['futureSchemasInDatabase'])}"
    if on_object := props.get("onSchemaObject"):
        for scope in ("all", "future"):
            if bulk := on_object.get(scope):
                plural = str(bulk.get("objectTypePlural")).upper()
                if bulk.get("inSchema"):
                    where = f"SCHEMA {_ident(bulk['inSchema'])}"
                else:
                    where = f"DATABASE {_ident(bulk.get('inDatabase'))}"
                return f"{scope.upper()} {plural} IN {where}"
        return f"{str(on_object.get('objectType')).upper()} {_ident(on_object.get('objectName'))}"
    return "UNKNOWN OBJECT"


def _grants_of(props: Mapping[str, Any]) -> set[Grant]:
    target = _target(props)
    if _truthy(props.get("allPrivileges")):
        return {("ALL", target)}
    return {(str(p).upper(), target) for p in props.get("privileges") or []}


@dataclass
class _Graph:
    direct: dict[str, set[Grant]] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)

    def effective(self, role: str, seen: frozenset[str] = frozenset()) -> set[Grant]:
        if role in seen:
            return set()
        grants = set(self.direct.get(role, set()))
        for child in self.children.get(role, set()):
            grants |= self.effective(child, seen | {role})
        return grants


def _role_graph(resources: Sequence[Resource]) -> _Graph:
    graph = _Graph()
    for r in resources:
        if r.type == GRANT_TO_ACCOUNT_ROLE:
            role = "ROLE " + _ident(r.props.get("accountRoleName")).upper()
            graph.direct.setdefault(role, set()).update(_grants_of(r.props))
        elif r.type == GRANT_TO_DATABASE_ROLE:
            role = "DBROLE " + _ident(r.props.get("databaseRoleName")).upper()
            graph.direct.setdefault(role, set()).update(_grants_of(r.props))
        elif r.type == GRANT_DATABASE_ROLE:
            child = "DBROLE " + _ident(r.props.get("databaseRoleName")).upper()
            if r.props.get("parentRoleName"):
                parent = "ROLE " + _ident(r.props["parentRoleName"]).upper()
            else:
                parent = "DBROLE " + _ident(r.props.get("parentDatabaseRoleName")).upper()
            graph.children.setdefault(parent, set()).add(child)
        elif r.type == GRANT_ACCOUNT_ROLE and r.props.get("parentRoleName"):
            child = "ROLE " + _ident(r.props.get("roleName")).upper()
            parent = "ROLE " + _ident(r.props["parentRoleName"]).upper()
            graph.children.setdefault(parent, set()).add(child)
    return graph


def infer_prefix(resources: Sequence[Resource]) -> str:
    """The stack's name prefix, read from the name of its RAW database."""
    for r in resources:
        name = str(r.props.get("name") or "")
        if r.type == DATABASE and name.endswith("RAW"):
            return name[: -len("RAW")]
    return ""


@stack_rule(
    "snowflake-grants-match-matrix",
    "Each functional role holds exactly the grant matrix; system roles get only what is listed",
    ("mdp: grant matrix (README)", "CIS Snowflake 1.13"),
)
def grants_match_matrix(resources: Sequence[Resource], c: Context) -> list[Violation]:
    if not any(r.type.startswith("snowflake:") for r in resources):
        return []
    prefix = infer_prefix(resources)
    graph = _role_graph(resources)
    expected = expected_grants(prefix)
    found = []
    declared = {_ident(r.props.get("name")).upper() for r in resources if r.type == ACCOUNT_ROLE}
    for role in sorted(declared - set(expected)):
        found.append(f"role {role} is not in the grant matrix")
    for role, wanted in expected.items():
        actual = graph.effective("ROLE " + role)
        for privilege, target in sorted(actual - wanted):
            found.append(f"{role} holds {privilege} on {target}, beyond the grant matrix")
        for privilege, target in sorted(wanted - actual):
            found.append(f"{role} lacks {privilege} on {target} from the grant matrix")
    monitors = [
        _ident(r.props.get("name")).upper() for r in resources if r.type == RESOURCE_MONITOR
    ]
    allowed = allowed_system_role_grants(prefix, monitors)
    for role in sorted(SYSTEM_ROLES):
        for privilege, target in sorted(graph.direct.get("ROLE " + role, set())):
            if (privilege, target) not in allowed.get(role, set()):
                found.append(f"system role {role} is granted {privilege} on {target}")
    return [Violation("snowflake-grants-match-matrix", "stack", m) for m in found]


@stack_rule(
    "snowflake-functional-roles-reach-sysadmin",
    "Every custom account role is granted, directly or through another, to SYSADMIN",
    ("Snowflake access control best practices",),
)
def functional_roles_reach_sysadmin(resources: Sequence[Resource], c: Context) -> list[Violation]:
    parents: dict[str, set[str]] = {}
    for r in resources:
        if r.type == GRANT_ACCOUNT_ROLE and r.props.get("parentRoleName"):
            parents.setdefault(_ident(r.props.get("roleName")).upper(), set()).add(
                _ident(r.props["parentRoleName"]).upper()
            )

    def reaches(role: str, seen: frozenset[str]) -> bool:
        if role == "SYSADMIN":
            return True
        return any(
            reaches(parent, seen | {role})
            for parent in parents.get(role, set())
            if parent not in seen
        )

    return [
        Violation(
            "snowflake-functional-roles-reach-sysadmin",
            r.name,
            f"role {name} is not granted to SYSADMIN, so admins cannot manage what it owns",
        )
        for r in resources
        if r.type == ACCOUNT_ROLE
        and not reaches(name := _ident(r.props.get("name")).upper(), frozenset())
    ]


@stack_rule(
    "snowflake-warehouses-use-declared-monitor",
    "Warehouses name a resource monitor this stack declares",
    ("mdp: cost guard",),
)
def warehouses_use_declared_monitor(resources: Sequence[Resource], c: Context) -> list[Violation]:
    monitors = {
        _ident(r.props.get("name")).upper() for r in resources if r.type == RESOURCE_MONITOR
    }
    return [
        Violation(
            "snowflake-warehouses-use-declared-monitor",
            r.name,
            f"resource monitor {r.props.get('resourceMonitor')!r} is not declared here",
        )
        for r in resources
        if r.type == WAREHOUSE and _ident(r.props.get("resourceMonitor")).upper() not in monitors
    ]


@stack_rule(
    "snowflake-accountadmin-only-for-monitors",
    "ACCOUNTADMIN manages resource monitors and their grants, and nothing else",
    ("CIS Snowflake 1.10",),
)
def accountadmin_only_for_monitors(resources: Sequence[Resource], c: Context) -> list[Violation]:
    # `provider_role` is the `role` of the Snowflake provider managing a resource.
    found = []
    for r in resources:
        if r.provider_role != "ACCOUNTADMIN":
            continue
        monitor_grant = r.type == GRANT_TO_ACCOUNT_ROLE and (
            str((r.props.get("onAccountObject") or {}).get("objectType")).upper()
            == "RESOURCE MONITOR"
        )
        if r.type != RESOURCE_MONITOR and not monitor_grant:
            found.append(
                Violation(
                    "snowflake-accountadmin-only-for-monitors",
                    r.name,
                    f"{r.type} is managed as ACCOUNTADMIN",
                )
            )
    return found


@stack_rule(
    "snowflake-prod-databases-protected",
    "In prod, databases and schemas carry protect=True",
    ("mdp: prod data survives a mistaken destroy",),
)
def prod_databases_protected(resources: Sequence[Resource], c: Context) -> list[Violation]:
    # A stack rule because `protect` is a resource option, which the pack passes with each
    # resource of the stack (not among a resource's properties).
    if not c.production:
        return []
    return [
        Violation(
            "snowflake-prod-databases-protected",
            r.name,
            f"prod {r.type.rsplit(':', 1)[-1]} is not protected",
        )
        for r in resources
        if r.type in (DATABASE, SCHEMA) and not r.protect
    ]


def private_key_outputs_are_secret(outputs: Mapping[str, tuple[Any, bool]]) -> Violations:
    """Stack outputs that carry a private key are secret. Maps name -> (value, is_secret)."""
    return [
        f"output {name} carries a private key but is not secret"
        for name, (value, secret) in outputs.items()
        if not secret
        and ("private_key" in name.lower() or any("PRIVATE KEY" in s for s in _strings(value)))
    ]
