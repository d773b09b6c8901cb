"""Snowflake policy rules: plain functions over resource properties, used by the tests and the policy pack."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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

ADMIN_ROLES = frozenset(
    {"ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "ORGADMIN", "GLOBALORGADMIN"}
)
SYSTEM_ROLES = ADMIN_ROLES | {"SYSADMIN", "PUBLIC"}

MAX_AUTO_SUSPEND_SECONDS = 60
# Snowflake's default is 172800 (two days); four hours is the most a daily batch needs.
MAX_STATEMENT_TIMEOUT_SECONDS = 4 * 3600
ALLOWED_WAREHOUSE_SIZES = frozenset({"XSMALL", "X-SMALL", "SMALL", "MEDIUM"})
MIN_RSA_BITS = 2048
NARROWEST_ALLOWED_PREFIX = 16


@dataclass(frozen=True)
class Resource:
    """What a rule sees of one resource: its type, name, properties and a few options."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    # The `role` of the Snowflake provider that manages it, when it has one.
    provider_role: str | None = None


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


def service_users_use_key_pairs(r: Resource) -> Violations:
    """Users are TYPE=SERVICE with an RSA public key and no password."""
    if r.type in (USER, LEGACY_SERVICE_USER):
        return [f"{r.name}: declare machine users as snowflake.ServiceUser (TYPE=SERVICE)"]
    if r.type != SERVICE_USER:
        return []
    found = []
    if not str(r.props.get("rsaPublicKey") or "").strip():
        found.append(f"{r.name}: service user has no RSA public key")
    if r.props.get("password"):
        found.append(f"{r.name}: service user has a password; use key-pair sign-in only")
    return found


def service_users_have_network_policy(r: Resource) -> Violations:
    """Every service user signs in only from the networks its policy allows."""
    if r.type == SERVICE_USER and not r.props.get("networkPolicy"):
        return [f"{r.name}: service user has no network policy"]
    return []


def service_users_have_narrow_defaults(r: Resource) -> Violations:
    """A service user's default role is a functional role and secondary roles are off."""
    if r.type != SERVICE_USER:
        return []
    found = []
    role = _ident(r.props.get("defaultRole")).upper()
    if not role or role in SYSTEM_ROLES:
        found.append(f"{r.name}: default role {role or '(none)'} is not a functional role")
    if str(r.props.get("defaultSecondaryRolesOption") or "").upper() != "NONE":
        found.append(f"{r.name}: default secondary roles must be NONE")
    return found


def no_admin_role_grants(r: Resource) -> Violations:
    """No role or user is granted ACCOUNTADMIN, SECURITYADMIN, USERADMIN or ORGADMIN."""
    if r.type == GRANT_ACCOUNT_ROLE:
        role = _ident(r.props.get("roleName")).upper()
        if role in ADMIN_ROLES:
            grantee = r.props.get("parentRoleName") or r.props.get("userName")
            return [f"{r.name}: grants {role} to {grantee}"]
    if r.type == GRANT_TO_ACCOUNT_ROLE and _truthy(r.props.get("onAccount")):
        return [f"{r.name}: grants account-level privileges {r.props.get('privileges')}"]
    return []


def grants_are_explicit(r: Resource) -> Violations:
    """Grants list their privileges explicitly, in the canonical form that causes no diffs."""
    if r.type not in (GRANT_TO_ACCOUNT_ROLE, GRANT_TO_DATABASE_ROLE):
        return []
    found = []
    privileges = list(r.props.get("privileges") or [])
    if _truthy(r.props.get("allPrivileges")):
        found.append(f"{r.name}: grants ALL PRIVILEGES")
    if not privileges and not _truthy(r.props.get("allPrivileges")):
        found.append(f"{r.name}: grants no explicit privileges")
    if "OWNERSHIP" in (p.upper() for p in privileges):
        found.append(f"{r.name}: grants OWNERSHIP; objects are owned by the role creating them")
    if _truthy(r.props.get("withGrantOption")):
        found.append(f"{r.name}: grants WITH GRANT OPTION")
    if _truthy(r.props.get("alwaysApply")):
        found.append(f"{r.name}: always_apply re-grants on every run (a permanent diff)")
    if privileges != sorted({p.upper() for p in privileges}):
        found.append(f"{r.name}: privileges {privileges} are not upper-case, sorted and unique")
    return found


def no_ownership_transfers(r: Resource) -> Violations:
    """Ownership is never transferred by the program."""
    if r.type == GRANT_OWNERSHIP:
        return [f"{r.name}: GrantOwnership takes objects away from the role that manages them"]
    return []


def warehouse_suspends_when_idle(r: Resource) -> Violations:
    """Warehouses auto-suspend within 60 s, auto-resume, and start suspended."""
    if r.type != WAREHOUSE:
        return []
    found = []
    suspend = _number(r.props.get("autoSuspend"))
    if suspend is None or not 0 < suspend <= MAX_AUTO_SUSPEND_SECONDS:
        found.append(
            f"{r.name}: auto_suspend is {_show(suspend)}, not 1-{MAX_AUTO_SUSPEND_SECONDS} s"
        )
    if not _truthy(r.props.get("autoResume")):
        found.append(f"{r.name}: auto_resume is not true")
    if not _truthy(r.props.get("initiallySuspended")):
        found.append(f"{r.name}: not initially suspended")
    return found


def warehouse_has_resource_monitor(r: Resource) -> Violations:
    """Every warehouse is attached to a resource monitor."""
    if r.type == WAREHOUSE and not r.props.get("resourceMonitor"):
        return [f"{r.name}: warehouse has no resource monitor"]
    return []


def warehouse_statement_timeout(r: Resource) -> Violations:
    """Statements time out well below Snowflake's two-day default."""
    if r.type != WAREHOUSE:
        return []
    timeout = _number(r.props.get("statementTimeoutInSeconds"))
    if timeout is None or not 0 < timeout <= MAX_STATEMENT_TIMEOUT_SECONDS:
        return [
            f"{r.name}: statement timeout is {_show(timeout)}, not 1-{MAX_STATEMENT_TIMEOUT_SECONDS} s"
        ]
    return []


def warehouse_size_capped(r: Resource) -> Violations:
    """Warehouse size is explicit and at most MEDIUM."""
    if r.type != WAREHOUSE:
        return []
    size = str(r.props.get("warehouseSize") or "").upper()
    if size not in ALLOWED_WAREHOUSE_SIZES:
        return [f"{r.name}: warehouse size {size or '(default)'} is not one of XSMALL..MEDIUM"]
    return []


def resource_monitor_thresholds(r: Resource) -> Violations:
    """A credit quota, notifications at 75% and 90%, and suspension at 100%."""
    if r.type != RESOURCE_MONITOR:
        return []
    found = []
    quota = _number(r.props.get("creditQuota"))
    if quota is None or quota <= 0:
        found.append(f"{r.name}: no positive credit quota")
    notify = {int(t) for t in r.props.get("notifyTriggers") or []}
    if not {75, 90} <= notify:
        found.append(f"{r.name}: notify triggers {sorted(notify)} lack 75 and 90")
    suspend = _number(r.props.get("suspendTrigger"))
    if suspend != 100:
        found.append(f"{r.name}: suspend trigger is {_show(suspend)}, not 100")
    return found


def network_rules_are_narrow(r: Resource) -> Violations:
    """Ingress rules list specific IPv4 addresses, never the internet."""
    if r.type != NETWORK_RULE:
        return []
    found = []
    if str(r.props.get("type")).upper() != "IPV4" or str(r.props.get("mode")).upper() != (
        "INGRESS"
    ):
        found.append(f"{r.name}: network rule must be IPV4 INGRESS")
    values = list(r.props.get("valueLists") or [])
    if not values:
        found.append(f"{r.name}: network rule allows no address")
    for value in values:
        try:
            network = ipaddress.IPv4Network(str(value), strict=False)
        except ValueError:
            found.append(f"{r.name}: {value!r} is not an IPv4 address or CIDR")
            continue
        if network.prefixlen < NARROWEST_ALLOWED_PREFIX:
            found.append(f"{r.name}: {value} is broader than /{NARROWEST_ALLOWED_PREFIX}")
    return found


def network_policies_use_rules(r: Resource) -> Violations:
    """Network policies allow network rules, not ad-hoc or open IP lists."""
    if r.type != NETWORK_POLICY:
        return []
    found = []
    if not r.props.get("allowedNetworkRuleLists"):
        found.append(f"{r.name}: network policy allows no network rule")
    if r.props.get("allowedIpLists"):
        found.append(f"{r.name}: network policy uses allowed_ip_lists; use network rules")
    return found


def rsa_keys_are_strong(r: Resource) -> Violations:
    """Key pairs are RSA with at least 2048 bits."""
    if r.type != TLS_PRIVATE_KEY:
        return []
    bits = _number(r.props.get("rsaBits"))
    if str(r.props.get("algorithm")).upper() != "RSA" or bits is None or bits < MIN_RSA_BITS:
        return [f"{r.name}: key must be RSA with >= {MIN_RSA_BITS} bits, got {_show(bits)}"]
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


def no_plaintext_private_keys(r: Resource) -> Violations:
    """Private key material appears only in the key, its secret, and the provider config."""
    if r.type in _KEY_HOLDERS:
        return []
    if any("PRIVATE KEY-----" in s for s in _strings(r.props)):
        return [f"{r.name}: a private key appears in the properties of a {r.type}"]
    return []


def provider_uses_key_pair(r: Resource) -> Violations:
    """The deploying identity signs in with a key pair, never a password."""
    if r.type != PROVIDER:
        return []
    found = []
    if str(r.props.get("authenticator") or "").upper() != "SNOWFLAKE_JWT":
        found.append(f"{r.name}: provider authenticator must be SNOWFLAKE_JWT")
    if r.props.get("password"):
        found.append(f"{r.name}: provider is configured with a password")
    return found


def prod_databases_protected(r: Resource, stack: str) -> Violations:
    """In prod, databases and schemas carry protect=True."""
    if stack == "prod" and r.type in (DATABASE, SCHEMA) and not r.protect:
        return [f"{r.name}: prod {r.type.rsplit(':', 1)[-1]} is not protected"]
    return []


RESOURCE_RULES: tuple[Callable[[Resource], Violations], ...] = (
    service_users_use_key_pairs,
    service_users_have_network_policy,
    service_users_have_narrow_defaults,
    no_admin_role_grants,
    grants_are_explicit,
    no_ownership_transfers,
    warehouse_suspends_when_idle,
    warehouse_has_resource_monitor,
    warehouse_statement_timeout,
    warehouse_size_capped,
    resource_monitor_thresholds,
    network_rules_are_narrow,
    network_policies_use_rules,
    rsa_keys_are_strong,
    no_plaintext_private_keys,
    provider_uses_key_pair,
)


# --- stack rules ----------------------------------------------------------------------

Grant = tuple[str, str]  # (privilege, object), e.g. ("SELECT", "FUTURE TABLES IN SCHEMA RAW.X")


def expected_grants(prefix: str = "") -> dict[str, frozenset[Grant]]:
    """The grant matrix: everything each functional role holds, and nothing more."""
    raw, analytics, dbt_dev = (f"{prefix}{d}" for d in ("RAW", "ANALYTICS", "DBT_DEV"))

    def read(db: str, schema: str) -> set[Grant]:
        target = f"{db}.{schema}"
        grants = {("USAGE", f"DATABASE {db}"), ("USAGE", f"SCHEMA {target}")}
        for scope in ("ALL", "FUTURE"):
            for plural in ("TABLES", "VIEWS"):
                grants.add(("SELECT", f"{scope} {plural} IN SCHEMA {target}"))
        return grants

    def write(db: str, schema: str, creates: Iterable[str]) -> set[Grant]:
        target = f"SCHEMA {db}.{schema}"
        return {("USAGE", f"DATABASE {db}"), ("USAGE", target)} | {(p, target) for p in creates}

    engineer = read(raw, "POSTGRES_AIRBYTE") | {
        ("CREATE SCHEMA", f"DATABASE {dbt_dev}"),
        ("USAGE", f"WAREHOUSE {prefix}TRANSFORMING_WH"),
    }
    for db in (analytics, dbt_dev):
        for schema in ("STAGING", "INTERMEDIATE", "FINANCE"):
            engineer |= read(db, schema) | write(db, schema, ("CREATE TABLE", "CREATE VIEW"))
    return {
        f"{prefix}AIRBYTE_ROLE": frozenset(
            write(raw, "POSTGRES_AIRBYTE", ("CREATE STAGE", "CREATE TABLE"))
            | {("USAGE", f"WAREHOUSE {prefix}LOADING_WH")}
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


def grants_match_matrix(resources: Sequence[Resource], prefix: str | None = None) -> Violations:
    """Each functional role holds exactly the grant matrix; system roles get only what is listed."""
    if not any(r.type.startswith("snowflake:") for r in resources):
        return []
    prefix = infer_prefix(resources) if prefix is None else prefix
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
    return found


def functional_roles_reach_sysadmin(resources: Sequence[Resource]) -> Violations:
    """Every custom account role is granted, directly or through another, to SYSADMIN."""
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
        f"role {name} is not granted to SYSADMIN, so admins cannot manage what it owns"
        for r in resources
        if r.type == ACCOUNT_ROLE
        and not reaches(name := _ident(r.props.get("name")).upper(), frozenset())
    ]


def warehouses_use_declared_monitor(resources: Sequence[Resource]) -> Violations:
    """Warehouses name a resource monitor this stack declares."""
    monitors = {
        _ident(r.props.get("name")).upper() for r in resources if r.type == RESOURCE_MONITOR
    }
    return [
        f"{r.name}: resource monitor {r.props.get('resourceMonitor')!r} is not declared here"
        for r in resources
        if r.type == WAREHOUSE and _ident(r.props.get("resourceMonitor")).upper() not in monitors
    ]


def accountadmin_only_for_monitors(resources: Sequence[Resource]) -> Violations:
    """ACCOUNTADMIN manages resource monitors and their grants, and nothing else."""
    found = []
    for r in resources:
        if r.provider_role != "ACCOUNTADMIN":
            continue
        monitor_grant = r.type == GRANT_TO_ACCOUNT_ROLE and (
            str((r.props.get("onAccountObject") or {}).get("objectType")).upper()
            == "RESOURCE MONITOR"
        )
        if r.type != RESOURCE_MONITOR and not monitor_grant:
            found.append(f"{r.name}: {r.type} is managed as ACCOUNTADMIN")
    return found


# The policy pack registers RESOURCE_RULES and STACK_RULES (infra/policies/rules/__init__.py).
# It sees a resource's type, name and properties only, so `prod_databases_protected` (needs
# the protect option) runs in the program tests, and `accountadmin_only_for_monitors` (needs
# the provider's role) finds nothing to report there.
STACK_RULES: tuple[Callable[[Sequence[Resource]], Violations], ...] = (
    grants_match_matrix,
    functional_roles_reach_sysadmin,
    warehouses_use_declared_monitor,
    accountadmin_only_for_monitors,
)


def private_key_outputs_are_secret(outputs: Mapping[str, tuple[Any, bool]]) -> Violations:
    """Stack outputs that carry a private key are secret. Maps name -> (value, is_secret)."""
    return [
        f"output {name} carries a private key but is not secret"
        for name, (value, secret) in outputs.items()
        if not secret
        and ("private_key" in name.lower() or any("PRIVATE KEY" in s for s in _strings(value)))
    ]


def check_stack(resources: Sequence[Resource], stack: str) -> Violations:
    """Every Snowflake rule over one stack's resources."""
    found: Violations = []
    for r in resources:
        for rule in RESOURCE_RULES:
            found.extend(rule(r))
        found.extend(prod_databases_protected(r, stack))
    for stack_rule in STACK_RULES:
        found.extend(stack_rule(resources))
    return found


# Where each rule comes from, for the policy pack's messages.
SOURCES: dict[str, tuple[str, ...]] = {
    "service_users_use_key_pairs": ("CIS Snowflake 1.6", "Snowflake TYPE=SERVICE users"),
    "service_users_have_network_policy": ("CIS Snowflake 3.2",),
    "service_users_have_narrow_defaults": ("CIS Snowflake 1.12", "mdp: secondary roles off"),
    "no_admin_role_grants": ("CIS Snowflake 1.10", "CIS Snowflake 1.13"),
    "grants_are_explicit": ("Snowflake provider grant migration guide", "mdp: no diffs"),
    "no_ownership_transfers": ("Snowflake provider grant_ownership caveats",),
    "warehouse_suspends_when_idle": ("mdp: cost guard", "Snowflake warehouse practices"),
    "warehouse_has_resource_monitor": ("mdp: cost guard", "Snowflake resource monitors"),
    "warehouse_statement_timeout": ("mdp: cost guard", "STATEMENT_TIMEOUT_IN_SECONDS"),
    "warehouse_size_capped": ("mdp: cost guard",),
    "resource_monitor_thresholds": ("mdp: cost guard", "Snowflake resource monitors"),
    "network_rules_are_narrow": ("CIS Snowflake 3.2", "mdp: no open ingress"),
    "network_policies_use_rules": ("Snowflake network rules",),
    "rsa_keys_are_strong": ("Snowflake key-pair authentication: RSA 2048+",),
    "no_plaintext_private_keys": ("mdp: secrets only as secrets",),
    "provider_uses_key_pair": ("CIS Snowflake 1.6", "Snowflake password sign-in deprecation"),
    "grants_match_matrix": ("mdp: grant matrix (README)", "CIS Snowflake 1.13"),
    "functional_roles_reach_sysadmin": ("Snowflake access control best practices",),
    "warehouses_use_declared_monitor": ("mdp: cost guard",),
    "accountadmin_only_for_monitors": ("CIS Snowflake 1.10",),
}
