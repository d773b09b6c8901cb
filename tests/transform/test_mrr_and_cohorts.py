"""MRR movements and cohorts checked against rules written apart from the models' SQL."""

from __future__ import annotations

from pathlib import Path

from tests.transform import marts_checks
from tests.transform.conftest import LocalBuild


def _warehouse(build: LocalBuild) -> Path:
    return build.home / "warehouse" / "analytics.duckdb"


def test_the_mrr_bridge_closes_for_every_plan_and_month(local_build: LocalBuild) -> None:
    assert local_build.outcome.success, local_build.outcome.statuses
    breaks, nonzero = marts_checks.bridge_breaks(_warehouse(local_build))
    assert breaks == []
    # The fixture's subscriptions start and end in different months: the bridge is not all zeros.
    assert nonzero["new_mrr"] > 0 and nonzero["churned_mrr"] > 0, nonzero


def test_cohort_retention_equals_a_recomputation_from_the_source(local_build: LocalBuild) -> None:
    want = marts_checks.expected_cohorts(local_build.fixture)
    got = marts_checks.built_cohorts(_warehouse(local_build))
    assert {k: v[:3] for k, v in got.items()} == want
    for key, (_, size, kept, rate) in got.items():
        assert abs(float(rate) - kept / size) < 0.0001, key
    # More than one cohort, and customers who left: retention is not trivially 100%.
    assert len({cohort for cohort, _ in want}) > 1
    assert any(kept < size for _, size, kept in want.values())


def test_saas_metrics_follow_their_definitions(local_build: LocalBuild) -> None:
    breaks, checked = marts_checks.saas_metric_breaks(local_build.fixture, _warehouse(local_build))
    assert breaks == []
    # Every figure was compared to a non-zero expectation in some month: none passed vacuously.
    for name in (
        "arr",
        "mrr",
        "active_customers",
        "net_revenue",
        "discount_rate",
        "arpu",
        "logo_churn_rate",
        "revenue_churn_rate",
        "grr",
        "nrr",
    ):
        assert checked.get(name, 0) > 0, (name, checked)
