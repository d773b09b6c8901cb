"""docs/snowflake-roles.md, generated from the needs table: `python -m infra.snowflake.docs`."""

from __future__ import annotations

from collections.abc import Sequence

from infra.snowflake import naming as n
from infra.snowflake.needs import DELIBERATE, SOURCES, WORKLOADS, Need, needs

DOC_PATH = "docs/snowflake-roles.md"
_OBJECTS = {"TABLE": "TABLES", "VIEW": "VIEWS", "STAGE": "STAGES", "FILE FORMAT": "FILE FORMATS"}


def _row_key(need: Need) -> tuple[str, str]:
    if need.on not in _OBJECTS:
        return need.privilege, need.target
    where = f"{_OBJECTS[need.on]} IN SCHEMA {need.database}.{need.schema}"
    if need.privilege == "OWNERSHIP":
        return "OWNERSHIP (as their creator)", where
    return need.privilege, f"FUTURE {where}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _role_table(rows: Sequence[Need]) -> list[str]:
    grouped: dict[tuple[str, str], list[Need]] = {}
    for need in rows:
        grouped.setdefault(_row_key(need), []).append(need)
    out = ["| Privilege | On | Needed by | Source |", "| --- | --- | --- | --- |"]
    for (privilege, target), group in grouped.items():
        statements = "<br>".join(f"`{_cell(s)}`" for s in dict.fromkeys(g.statement for g in group))
        sources = ", ".join(f"`{s}`" for s in dict.fromkeys(g.source for g in group))
        out.append(f"| {privilege} | {target} | {statements} | {sources} |")
    return out


def roles_markdown() -> str:
    """One table per role: what it may do, the statements that need it, and their sources."""
    declared_schemas = {f"{db}.{s}" for db, schemas in n.SCHEMAS.items() for s in schemas}
    table = [
        need
        for need in needs()
        if not (need.unless_declared and f"{need.database}.{need.schema}" in declared_schemas)
    ]
    lines = [
        "# Snowflake roles",
        "",
        "<!-- Generated from infra/snowflake/needs.py by "
        "`.venv/bin/python -m infra.snowflake.docs > docs/snowflake-roles.md`: do not edit by hand. -->",
        "",
        "What each role may do in Snowflake, and why: every privilege below is needed by a "
        "statement a workload runs, with the connector, adapter or documentation line that "
        "says so. `tests/infra/snowflake/test_needs.py` proves, for both stacks under mocks, "
        "that the grants the program declares meet these needs and grant nothing else (bar "
        "the few kept on purpose, listed at the end), and that this file is up to date.",
        "",
        "Names are base names: a stack with a `namePrefix` (dev: `DEV_`) prefixes databases, "
        "roles and warehouses. Functional roles hold their schema privileges through "
        "database roles (`<SCHEMA>_READ`, `<SCHEMA>_WRITE`); every schema is managed-access "
        "and owned by SYSADMIN, which also makes all future grants (schema level only). "
        "Objects belong to the role that creates them, so no role is ever granted OWNERSHIP.",
    ]
    for workload in WORKLOADS.values():
        rows = [need for need in table if need.workload == workload.name]
        lines += ["", f"## {workload.role}", "", f"Used by `{workload.name}`: {workload.does}.", ""]
        lines += _role_table(rows)
    lines += [
        "",
        "## Kept on purpose",
        "",
        "Declared although no statement above needs them.",
        "",
        "| Privilege | On | Held by | Why |",
        "| --- | --- | --- | --- |",
    ]
    for kept in DELIBERATE:
        targets = "<br>".join(f"`{t}`" for t in kept.targets)
        lines.append(f"| {kept.privilege} | {targets} | `{kept.holder}` | {kept.reason} |")
    lines += ["", "## Sources", ""]
    lines += [f"- `{key}`: {where}" for key, where in SOURCES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(roles_markdown(), end="")
