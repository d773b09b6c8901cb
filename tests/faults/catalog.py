"""The planted faults: for each guarantee, one small change to one file and the test that backs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    name: str
    guarantee: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in `path`
    new: str
    tests: tuple[str, ...]  # pytest arguments selecting the one test (or few) that back it
    # False: too slow for every CI run; `make test-faults FAULTS=all` runs it too.
    in_ci: bool = True
    # Environment variables the test runs with.
    env: Mapping[str, str] = field(default_factory=dict)


TRANSFORM = "transform/models"
# For tests that read the models of the session's local build: dbt builds them without its data
# and unit tests (`make test` runs those), which cuts the build from ~30 s to ~6 s. The fault
# must then show in the built rows the test checks, not in a dbt test that skips a model.
MODELS_ONLY = {"DBT_EXCLUDE_RESOURCE_TYPES": "test unit_test"}

FAILED_SYNC_OLD = (
    "            if status == JobStatusEnum.SUCCEEDED:\n"
    '                message = f"Airbyte job {job_id} succeeded."\n'
)
FAILED_SYNC_NEW = (
    "            if status == JobStatusEnum.SUCCEEDED or not is_waiting(status):\n"
    '                message = f"Airbyte job {job_id} succeeded."\n'
)

FAULTS: tuple[Fault, ...] = (
    Fault(
        "pii-masking",
        "PII never leaves staging in clear text (contract section 2)",
        f"{TRANSFORM}/staging/postgres_airbyte/stg_postgres_airbyte__banks.sql",
        "right(replace(iban, ' ', ''), 4) as iban_last4",
        "replace(iban, ' ', '') as iban_last4",
        (
            "tests/transform/test_pii_values.py"
            "::test_no_pii_value_of_the_source_appears_in_any_analytics_table_or_view",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "half-up-rounding",
        "money is rounded half away from zero (contract section 4)",
        "transform/macros/cross_database.sql",
        "((abs({{ numerator }}) * 2 + {{ denominator }}) // ({{ denominator }} * 2))",
        "((abs({{ numerator }}) * 2 + {{ denominator }} - 1) // ({{ denominator }} * 2))",
        (
            "tests/transform/test_local_build.py"
            "::test_checked_marts_match_hand_computed_expectations",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "incremental-soft-delete-scope",
        "an incremental run recomputes the subscriptions of a user soft-deleted since the last run",
        "transform/macros/incremental.sql",
        "or changed.user_id in (",
        "or false and changed.user_id in (",
        (
            "tests/transform/test_incremental_scope.py::test_incremental_result_equals_a_full_rebuild",
        ),
    ),
    Fault(
        "incremental-plan-price-scope",
        "an incremental run redoes the subscriptions of a plan whose price changed since the last run",
        "transform/macros/incremental.sql",
        "or changed.plan_key in (",
        "or false and changed.plan_key in (",
        (
            "tests/transform/test_incremental_scope.py"
            "::test_only_changed_subscriptions_are_recomputed",
        ),
    ),
    Fault(
        "d7-deduplication",
        "D7: the payment with the smallest id per charge_id is kept, the others quarantined",
        f"{TRANSFORM}/staging/postgres_airbyte/base/base_postgres_airbyte__payments_checked.sql",
        "and charges.first_payment_id < payments.payment_id",
        "and charges.first_payment_id > payments.payment_id",
        (
            "tests/transform/test_local_build.py"
            "::test_checked_marts_match_hand_computed_expectations",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "mrr-bridge",
        "MRR = last month's MRR + new + expansion + reactivation + plan change - contraction - churned",
        f"{TRANSFORM}/intermediate/finance/int_mrr_movements_classified.sql",
        "where was_counted and not is_counted",
        "where was_counted and not is_counted and false",
        (
            "tests/transform/test_mrr_and_cohorts.py"
            "::test_the_mrr_bridge_closes_for_every_plan_and_month",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "reconciliation",
        "every sync compares row counts and checksums of (id, updated_at) with the source",
        "ingestion/reconcile.py",
        "return self.source == self.raw",
        "return self.source.rows == self.raw.rows",
        ("tests/ingestion/test_sync.py::test_reconciliation_catches_a_corrupted_raw_table",),
    ),
    Fault(
        "budget-guard",
        "`mdp plan` fails when the estimate is over the stack's monthly budget",
        "infra/cost.py",
        "if total <= budget_usd:",
        "if total <= budget_usd or True:",
        ("tests/infra/test_cost.py::test_budget_guard_names_the_top_lines",),
    ),
    Fault(
        "aws-rule-rds-not-public",
        "the policy pack rejects a publicly accessible RDS instance",
        "infra/policies/rules/aws.py",
        'return ["publiclyAccessible is true"] if p.get("publiclyAccessible") else []',
        "return []",
        ("tests/infra/test_policies.py", "-k", "rds-not-public"),
    ),
    Fault(
        "snowflake-rule-auto-suspend",
        "the policy pack rejects a warehouse that stays up more than 60 s idle",
        "infra/policies/rules/snowflake.py",
        "if suspend is None or not 0 < suspend <= MAX_AUTO_SUSPEND_SECONDS:",
        "if suspend is None:",
        (
            "tests/infra/snowflake/test_rules.py",
            "-k",
            "resource_rule_catches_bad_resource and autoSuspend",
        ),
    ),
    Fault(
        "policy-pack-production",
        "the deployed pack turns the prod rules on with production=true",
        "infra/policies/__main__.py",
        'return Context(production=bool(config.get("production", False)))',
        "return Context(production=False)",
        ("tests/infra/test_policy_pack_deployed.py::test_production_true_turns_the_prod_rules_on",),
    ),
    Fault(
        "airbyte-secret-scrubbing",
        "no Airbyte secret reaches outputs, errors or logs",
        "infra/airbyte/client.py",
        "text = text.replace(needle, REDACTED)",
        "text = text.replace(needle, needle)",
        ("tests/infra/airbyte/test_provider.py::test_secrets_never_reach_outputs_errors_or_logs",),
    ),
    Fault(
        "d1-per-column",
        "D1 dirties every categorical column at its rate",
        "source_generator/simulation.py",
        "bank if rnd() >= d1 else self._dirty(bank),",
        "bank if rnd() >= 0 else self._dirty(bank),",
        (
            "tests/source_generator/test_dirt.py"
            "::test_d1_rate_on_each_categorical_column[banks.bank_name]",
        ),
    ),
    Fault(
        "dashboard-figures",
        "the dashboard shows the marts dbt built, to the cent",
        "dashboard/metrics.py",
        "amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)",
        "amount = Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)",
        (
            "tests/dashboard/test_browser_real.py"
            "::test_the_dashboard_over_the_built_warehouse_shows_the_contracts_figures",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "cohort-retention",
        "a customer joins the cohort of the first month one of their subscriptions counts",
        f"{TRANSFORM}/marts/finance/cohort_retention_monthly.sql",
        "min(month) as cohort_month",
        "max(month) as cohort_month",
        (
            "tests/transform/test_mrr_and_cohorts.py"
            "::test_cohort_retention_equals_a_recomputation_from_the_source",
        ),
        env=MODELS_ONLY,
    ),
    Fault(
        "saas-metrics-logo-churn",
        "saas_metrics_monthly follows its definitions: logo churn over last month's subscriptions",
        f"{TRANSFORM}/marts/finance/saas_metrics_monthly.sql",
        "'churned_subscriptions', 'coalesce(previous_active_subscriptions, 0)'",
        "'churned_subscriptions', 'coalesce(active_subscriptions, 0)'",
        ("tests/transform/test_mrr_and_cohorts.py::test_saas_metrics_follow_their_definitions",),
        env=MODELS_ONLY,
    ),
    Fault(
        "failed-sync-stops-dbt",
        "a failed Airbyte sync, even one that landed part of RAW, never reaches dbt",
        "orchestration/include/airbyte.py",
        # The trigger's test: every status that is not waiting counts as success.
        FAILED_SYNC_OLD,
        FAILED_SYNC_NEW,
        # The sensor fails its task on a job that failed after landing rows; the dbt tasks
        # wait on it with all_success (the DAG run below shows the whole run).
        (
            "tests/orchestration/test_airbyte_sensor.py"
            "::test_a_job_that_failed_after_landing_rows_fails_the_sensor_in_both_modes",
        ),
    ),
    Fault(
        "failed-sync-stops-the-dag-run",
        "a DAG run whose sync fails after landing part of RAW fails before dbt; the marts stand",
        "orchestration/include/airbyte.py",
        FAILED_SYNC_OLD,
        FAILED_SYNC_NEW,
        # Two DAG runs on the cloud target (~170 s): the fault above catches it in ~15 s.
        (
            "tests/orchestration/test_cloud_dag_run.py"
            "::test_a_sync_that_fails_midway_stops_the_run_before_dbt",
        ),
        in_ci=False,
    ),
    Fault(
        "malformed-dsn-password",
        "a malformed source DSN is named in the error without its password",
        "core/localpg.py",
        'f"The source DSN {redact(dsn)} is not a valid PostgreSQL connection string. "',
        'f"The source DSN {dsn} is not a valid PostgreSQL connection string. "',
        (
            "tests/source_generator/test_failures.py"
            "::test_a_malformed_dsn_is_named_without_its_password",
        ),
    ),
)
