"""Checks each workload's needs against the grants a program declares, by Snowflake's rules."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.snowflake import naming as n
from infra.snowflake.needs import DELIBERATE, WORKLOADS, Deliberate, Need

DATABASE = "snowflake:index/database:Database"
SCHEMA = "snowflake:index/schema:Schema"
GRANT_ACCOUNT_ROLE = "snowflake:index/grantAccountRole:GrantAccountRole"
GRANT_DATABASE_ROLE = "snowflake:index/grantDatabaseRole:GrantDatabaseRole"
GRANT_TO_ACCOUNT_ROLE = "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"
GRANT_TO_DATABASE_ROLE = (
    "snowflake:index/grantPrivilegesToDatabaseRole:GrantPrivilegesToDatabaseRole"
)
# Objects inside a schema, and the plural a future grant names them by.
SCHEMA_OBJECTS = {
    "TABLE": "TABLES",
    "VIEW": "VIEWS",
    "STAGE": "STAGES",
    "FILE FORMAT": "FILE FORMATS",
}


class Declared(Protocol):
    """A resource as the program declared it (the policy rules' Resource fits)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def props(self) -> Mapping[str, Any]: ...
    @property
    def provider_role(self) -> str | None: ...


@dataclass(frozen=True)
class Grant:
    """One privilege on one object to one role, in base names (no stack prefix)."""

    holder: str  # an account role (AIRBYTE_ROLE) or a database role (RAW.POSTGRES_AIRBYTE_READ)
    privilege: str
    target: str  # "SCHEMA RAW.POSTGRES_AIRBYTE", "FUTURE TABLES IN SCHEMA RAW.POSTGRES_AIRBYTE"
    resource: str  # the Pulumi resource that declares it
    declared_as: str | None = None  # the role of the provider that makes the grant

    def __str__(self) -> str:
        return f"{self.privilege} on {self.target} to {self.holder}"


@dataclass
class Grants:
    """What a program declares: grants, role membership, and its schemas with their owners."""

    grants: list[Grant] = field(default_factory=list)
    # Role -> the roles and database roles granted to it (whose privileges it inherits).
    members: dict[str, set[str]] = field(default_factory=dict)
    # "RAW.POSTGRES_AIRBYTE" -> (managed access, owner: the role creating the schema)
    schemas: dict[str, tuple[bool, str | None]] = field(default_factory=dict)

    def holders(self, role: str) -> set[str]:
        """The role and every role or database role it inherits, at any depth."""
        seen, todo = set(), [role]
        while todo:
            r = todo.pop()
            if r not in seen:
                seen.add(r)
                todo.extend(self.members.get(r, ()))
        return seen

    def without(self, privilege: str, target: str) -> Grants:
        """A copy with that privilege on that target removed from every grant."""
        kept = [g for g in self.grants if (g.privilege, g.target) != (privilege, target)]
        return Grants(kept, self.members, self.schemas)


def _ident(value: Any) -> str:
    return ".".join(p.strip().strip('"') for p in str(value or "").split("."))


def _infer_prefix(resources: Iterable[Declared]) -> str:
    for r in resources:
        name = str(r.props.get("name") or "")
        if r.type == DATABASE and name.endswith(n.RAW):
            return name[: -len(n.RAW)]
    return ""


def _target(props: Mapping[str, Any]) -> str:
    if props.get("onDatabase"):
        return f"DATABASE {_ident(props['onDatabase'])}"
    if obj := props.get("onAccountObject"):
        return f"{str(obj.get('objectType')).upper()} {_ident(obj.get('objectName'))}"
    if (on_schema := props.get("onSchema")) and on_schema.get("schemaName"):
        return f"SCHEMA {_ident(on_schema['schemaName'])}"
    for scope in ("all", "future"):
        if bulk := (props.get("onSchemaObject") or {}).get(scope):
            plural = str(bulk.get("objectTypePlural")).upper()
            where = (
                f"SCHEMA {_ident(bulk['inSchema'])}"
                if bulk.get("inSchema")
                else f"DATABASE {_ident(bulk.get('inDatabase'))}"
            )
            return f"{scope.upper()} {plural} IN {where}"
    return f"UNSUPPORTED {sorted(props)}"


def declared_grants(resources: Sequence[Declared]) -> Grants:
    """The grants, role graph and schemas among the declared resources, in base names."""
    prefix = _infer_prefix(resources)

    def base(text: str) -> str:
        # Names are prefixed per stack (DEV_RAW, DEV_AIRBYTE_ROLE); schemas never are.
        words = text.split(" ")
        words[-1] = ".".join(
            p[len(prefix) :] if prefix and p.startswith(prefix) else p
            for p in _ident(words[-1]).split(".")
        )
        return " ".join(words)

    out = Grants()
    for r in resources:
        p = r.props
        if r.type == SCHEMA:
            managed = str(p.get("withManagedAccess")).lower() == "true"
            key = base(f"{_ident(p.get('database'))}.{p.get('name')}")
            out.schemas[key] = (managed, r.provider_role)
        elif r.type in (GRANT_TO_DATABASE_ROLE, GRANT_TO_ACCOUNT_ROLE):
            holder = base(_ident(p.get("databaseRoleName") or p.get("accountRoleName")))
            for privilege in p.get("privileges") or []:
                out.grants.append(
                    Grant(holder, str(privilege).upper(), base(_target(p)), r.name, r.provider_role)
                )
        elif r.type == GRANT_DATABASE_ROLE:
            parent = p.get("parentRoleName") or p.get("parentDatabaseRoleName")
            out.members.setdefault(base(_ident(parent)), set()).add(
                base(_ident(p.get("databaseRoleName")))
            )
        elif r.type == GRANT_ACCOUNT_ROLE and p.get("parentRoleName"):
            out.members.setdefault(base(_ident(p["parentRoleName"])), set()).add(
                base(_ident(p.get("roleName")))
            )
    return out


@dataclass
class Verdict:
    """Needs no grant meets, grants no need uses, and which grants met each need."""

    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    support: dict[Need, list[Grant]] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [*self.missing, *self.unused]


def _role_of(workload: str) -> str:
    return WORKLOADS[workload].role


def _candidates(need: Need, declared: Grants) -> list[Grant]:
    """The declared grants that would give `need`, by Snowflake's rules for that object."""
    if need.on not in SCHEMA_OBJECTS:
        return [
            g for g in declared.grants if (g.privilege, g.target) == (need.privilege, need.target)
        ]
    plural, schema = SCHEMA_OBJECTS[need.on], f"{need.database}.{need.schema}"
    futures = [g for g in declared.grants if g.target == f"FUTURE {plural} IN SCHEMA {schema}"]
    if not futures:
        # Database-level future grants apply only where the schema has none of its own for
        # that object type: schema-level future grants take precedence.
        futures = [
            g for g in declared.grants if g.target == f"FUTURE {plural} IN DATABASE {need.database}"
        ]
    managed, owner = declared.schemas.get(schema, (False, None))
    if managed:
        # In a managed-access schema only the schema's owner grants on its objects (future
        # grants included); the objects' owners cannot, so nothing else counts.
        futures = [g for g in futures if g.declared_as in (None, owner)]
    return [g for g in futures if g.privilege == need.privilege]


def _fix(need: Need, role: str, declared: Grants) -> str:
    if need.privilege == "OWNERSHIP":
        return (
            f"have {role} create these objects, so that it owns them (the program never "
            "grants OWNERSHIP)"
        )
    holders = declared.holders(role)
    reads = need.on in SCHEMA_OBJECTS
    if need.on in ("WAREHOUSE", "RESOURCE MONITOR") or need.database == n.ADMIN:
        to = f"role {role}"
    else:
        # For the database itself, any access role of it the role already holds; otherwise
        # the schema's read or write role (granted to the role too, if it lacks it).
        in_db = sorted(h for h in holders if h.startswith(f"{need.database}."))
        kind = n.read_role if reads else n.write_role
        db_role = f"{need.database}.{kind(need.schema)}"
        if need.on == "DATABASE" and in_db:
            db_role = in_db[0]
        to = f"database role {db_role}"
        if db_role not in holders:
            to += f", and grant {db_role} to {role}"
    target = need.target
    if need.on in SCHEMA_OBJECTS:
        target = f"FUTURE {SCHEMA_OBJECTS[need.on]} IN SCHEMA {need.database}.{need.schema}"
    grant = f"GRANT {need.privilege} ON {target} TO {to}"
    if need.unless_declared:
        return (
            f"declare schema {need.database}.{need.schema} in the program "
            f"(infra/snowflake/naming.py SCHEMAS) or point the workload at a declared one; "
            f"failing that, {grant}"
        )
    return grant


def _deliberate(grant: Grant, kept: Sequence[Deliberate]) -> Deliberate | None:
    for d in kept:
        if (
            d.privilege == grant.privilege
            and fnmatch.fnmatchcase(grant.holder, d.holder)
            and any(fnmatch.fnmatchcase(grant.target, t) for t in d.targets)
        ):
            return d
    return None


def evaluate(
    needs: Sequence[Need], declared: Grants, deliberate: Sequence[Deliberate] = DELIBERATE
) -> Verdict:
    """Each need met by ownership or a grant its role holds; each grant used or kept on purpose."""
    verdict = Verdict()
    used: set[Grant] = set()
    for need in needs:
        role = _role_of(need.workload)
        schema = f"{need.database}.{need.schema}"
        if need.unless_declared and schema in declared.schemas:
            continue
        if need.owner and _role_of(need.owner) == role:
            # The creator of an object owns it, managed-access schema or not.
            continue
        holders = declared.holders(role)
        found = [g for g in _candidates(need, declared) if g.holder in holders]
        if found:
            verdict.support[need] = found
            used.update(found)
            continue
        verdict.missing.append(
            f"{need.workload} ({role}) cannot run `{need.statement}`: it needs "
            f"{need.privilege} on {need.target}. Fix: {_fix(need, role, declared)}."
        )
    for grant in declared.grants:
        if grant not in used and _deliberate(grant, deliberate) is None:
            verdict.unused.append(
                f"{grant.resource}: {grant} is declared but no workload needs it "
                "(infra/snowflake/needs.py). Remove it, or list it in DELIBERATE with a reason."
            )
    return verdict
