"""The publish step: check the marts, then refresh the Parquet exports the dashboard and readers use."""

from __future__ import annotations

import logging
from typing import Any

from orchestration.include.settings import Settings

log = logging.getLogger(__name__)


class MartsNotPublishable(RuntimeError):
    """The marts are missing or empty after dbt: nothing was exported, the last export is kept."""


def check_marts(warehouse: Any) -> dict[str, int]:
    """Row counts of the contract marts; fails when one is missing or empty."""
    from dashboard.warehouse import CONTRACT_MARTS, WarehouseError

    try:
        with warehouse.session() as session:
            tables = session.read_required(CONTRACT_MARTS)
    except WarehouseError as err:
        raise MartsNotPublishable(
            f"{err} The previous exports were left untouched; look at the transform tasks' logs."
        ) from err
    counts = {name: table.num_rows for name, table in tables.items()}
    empty = [name for name, rows in counts.items() if rows == 0]
    if empty:
        raise MartsNotPublishable(
            f"the marts {', '.join(empty)} in {warehouse.description} are empty after dbt. The "
            "previous exports were left untouched; check that the sync loaded rows into RAW."
        )
    return counts


def publish(settings: Settings) -> dict[str, Any]:
    """Check the marts, then replace the Parquet exports partition by partition."""
    from dashboard.warehouse import from_env
    from exports import export_marts

    if settings.target == "local":
        from orchestration.include.local_steps import release_dbt_duckdb

        release_dbt_duckdb()
    warehouse = from_env()
    counts = check_marts(warehouse)
    log.info("marts checked in %s: %s", warehouse.description, counts)
    result = export_marts(warehouse=warehouse)
    log.info("exported %d rows to %s", result.rows, result.target)
    # The dashboard reads the warehouse directly, so fresh marts are all it needs.
    return {
        "target": settings.target,
        "marts": counts,
        "exports": str(result.target),
        "rows_exported": result.rows,
    }
