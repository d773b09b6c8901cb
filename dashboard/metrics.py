"""The dashboard's figures, computed from the marts as pandas frames (no Streamlit here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pyarrow as pa

from core.warehouse import WarehouseSession

CENT = Decimal("0.01")
# Movements in the order they explain a month's change in MRR; the last two lower it.
GAINS = ("new_mrr", "expansion_mrr", "reactivation_mrr")
LOSSES = ("contraction_mrr", "churned_mrr")
# MRR moved between plans by plan changes, signed; it nets to zero over all plans.
SIGNED = ("plan_change_mrr",)
MOVEMENT_LABELS = {
    "new_mrr": "New",
    "expansion_mrr": "Expansion",
    "reactivation_mrr": "Reactivation",
    "contraction_mrr": "Contraction",
    "churned_mrr": "Churn",
    "plan_change_mrr": "Plan change",
}


# Marts the dashboard shows when they exist; the contract marts alone still make a dashboard.
BY_BILLING_PERIOD = "revenue_and_mrr_by_billing_period"
OPTIONAL_MARTS = ("cohort_retention_monthly", BY_BILLING_PERIOD)
# The one-row mart saying how current the others are, in the schema the reporting role reads.
AS_OF_MART = "data_as_of"

# What each KPI means, shown as its help text: every figure's definition is one hover away.
KPI_HELP = {
    "mrr": "Monthly recurring revenue at the latest state: Σ over active subscriptions of the "
    "current plan's monthly price, or its annual price / 12 for annual billing. Subscriptions "
    "of deleted users are excluded (MRR_BY_PLAN).",
    "arr": "Annual recurring revenue of the active subscriptions: twelve monthly prices for "
    "monthly billing, the annual price for annual billing (MRR_BY_PLAN.arr).",
    "active_subscriptions": "Subscriptions whose status is active at the latest state "
    "(MRR_BY_PLAN.active_subscriptions).",
    "arpu": "Average revenue per subscription: MRR / active subscriptions.",
    "net_revenue_period": "Σ net revenue of the months chosen in the filters: amount - "
    "discount of succeeded payments, by the month of paid_at (MONTHLY_NET_REVENUE_BY_PLAN). "
    "Failed and refunded payments count 0; quarantined rows are excluded.",
    "net_revenue_month": "Net revenue of the last full month: amount - discount of its "
    "succeeded payments (MONTHLY_NET_REVENUE_BY_PLAN).",
    "churn_rate": "MRR churn rate of the last full month: MRR of subscriptions that stopped "
    "counting (cancelled, idle, blocked) / MRR at the end of the month before.",
    "nrr": "Net revenue retention of the last full month: (MRR at the end of the month before "
    "- churned - contraction + expansion) / MRR at the end of the month before.",
}


@dataclass(frozen=True)
class AsOf:
    """How current the marts are, as the DATA_AS_OF mart records it."""

    last_load: dt.datetime | None  # the newest sync the marts include (_airbyte_extracted_at)
    last_run: dt.datetime | None  # when the dbt run that built the marts started
    found: bool = True  # False when the warehouse has no DATA_AS_OF mart (an older deployment)

    @property
    def current_month(self) -> dt.date | None:
        """The month still in progress when the data was loaded."""
        if self.last_load is None:
            return None
        return self.last_load.date().replace(day=1)


def read_as_of(session: WarehouseSession) -> AsOf:
    """The DATA_AS_OF mart's row; unknown times when the mart is missing or empty."""
    ref = session.find(AS_OF_MART)
    if ref is None:
        return AsOf(None, None, found=False)
    row = session.read(ref).to_pylist()
    if not row:
        return AsOf(None, None)
    return AsOf(utc(row[0].get("last_loaded_at")), utc(row[0].get("marts_built_at")))


def utc(value: object) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def as_of_line(as_of: AsOf) -> str:
    def at(value: dt.datetime | None) -> str:
        return f"{value:%Y-%m-%d %H:%M} UTC" if value else "unknown"

    line = (
        f"Data as of {at(as_of.last_load)} (last successful load) · marts built "
        f"{at(as_of.last_run)} (last successful run)"
    )
    if not as_of.found:
        line += (
            f". The warehouse has no {AS_OF_MART.upper()} mart, which records both: the next "
            "pipeline run builds it"
        )
    return line


def money(value: object) -> str:
    """US dollars to the cent, rounded half away from zero: `$1,234.56`, `-$7.00`, `—` for none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def percent(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def month_label(value: dt.date, partial: dt.date | None = None) -> str:
    """`2026-11`, or `2026-12 (partial)` for the month still in progress."""
    label = value.strftime("%Y-%m")
    return f"{label} (partial)" if partial is not None and value >= partial else label


def full_months(df: pd.DataFrame, partial: dt.date | None, col: str = "month") -> pd.DataFrame:
    """Rows of complete months only: rates of a month in progress would mislead."""
    if partial is None or df.empty:
        return df
    return df[df[col] < partial]


def _as_decimal(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


@dataclass(frozen=True)
class Marts:
    """The three contract marts as frames, with month columns as `datetime.date`, and the
    revenue and MRR by billing period when the warehouse has it."""

    net_revenue: pd.DataFrame
    monthly_net_revenue: pd.DataFrame
    mrr: pd.DataFrame
    by_billing_period: pd.DataFrame | None = None

    @classmethod
    def from_arrow(cls, tables: Mapping[str, pa.Table]) -> Marts:
        def frame(name: str, date_col: str | None = None) -> pd.DataFrame:
            df = tables[name].to_pandas()
            if date_col is not None:
                df[date_col] = pd.to_datetime(df[date_col]).dt.date
            return df

        return cls(
            net_revenue=frame("net_revenue_by_plan"),
            monthly_net_revenue=frame("monthly_net_revenue_by_plan", "revenue_month"),
            mrr=frame("mrr_by_plan", "month"),
            by_billing_period=frame(BY_BILLING_PERIOD, "month")
            if BY_BILLING_PERIOD in tables
            else None,
        )

    @property
    def plans(self) -> list[str]:
        names = set(self.net_revenue["plan_name"]) | set(self.mrr["plan_name"])
        names |= set(self.monthly_net_revenue["plan_name"])
        return sorted(str(n) for n in names if n is not None)

    @property
    def months(self) -> list[dt.date]:
        found = set(self.monthly_net_revenue["revenue_month"]) | set(self.mrr["month"])
        return sorted(m for m in found if m is not None)

    def filtered(self, plans: Sequence[str], start: dt.date, end: dt.date) -> Marts:
        """Rows of the chosen plans; the time series cut to [start, end]. The all-time mart
        keeps every month, since it is by definition all time."""
        nr = self.net_revenue[self.net_revenue["plan_name"].isin(plans)]
        mnr = self.monthly_net_revenue
        mnr = mnr[mnr["plan_name"].isin(plans) & mnr["revenue_month"].between(start, end)]
        mrr = self.mrr[self.mrr["plan_name"].isin(plans) & self.mrr["month"].between(start, end)]
        periods = self.by_billing_period
        if periods is not None:
            periods = periods[
                periods["plan_name"].isin(plans) & periods["month"].between(start, end)
            ]
        return Marts(nr, mnr, mrr, periods)


def net_revenue_table(marts: Marts) -> pd.DataFrame:
    """All-time net revenue by plan, formatted for display, largest first."""
    df = marts.net_revenue.sort_values("net_revenue", ascending=False)
    return pd.DataFrame(
        {
            "Plan": df["plan_name"].astype(str),
            "Net revenue": [money(v) for v in df["net_revenue"]],
            "Succeeded payments": [f"{int(v):,}" for v in df["succeeded_payments"]],
        }
    ).reset_index(drop=True)


def total(values: pd.Series) -> Decimal:
    return sum((_as_decimal(v) for v in values), Decimal(0))


def monthly_mrr(marts: Marts) -> pd.DataFrame:
    """MRR, active subscriptions, movements, ARPU and MRR churn rate per month (chosen plans summed).

    ARPU = MRR / active subscriptions. MRR churn rate = churned MRR / MRR at the end of the
    previous month; GRR = (previous MRR - churned - contraction) / previous MRR; NRR adds
    expansion to GRR's numerator. Movements are shown with the sign of their effect: losses
    negative, whatever sign the mart stores them with.
    """
    df = marts.mrr
    signed = [c for c in SIGNED if c in df.columns]
    columns = ["mrr", "active_subscriptions", *GAINS, *LOSSES, *signed]
    columns += [c for c in ("arr",) if c in df.columns]
    if df.empty:
        return pd.DataFrame(columns=["month", *columns, "arpu", "churn_rate", "grr", "nrr"])
    grouped = df.groupby("month", sort=True)[columns].agg(lambda s: total(s)).reset_index()
    for col in LOSSES:
        grouped[col] = [-abs(v) for v in grouped[col]]
    for col in GAINS:
        grouped[col] = [abs(v) for v in grouped[col]]
    grouped["active_subscriptions"] = grouped["active_subscriptions"].astype(int)
    grouped["arpu"] = [
        (m / n).quantize(CENT, rounding=ROUND_HALF_UP) if n else None
        for m, n in zip(grouped["mrr"], grouped["active_subscriptions"], strict=True)
    ]
    previous = [None, *grouped["mrr"].tolist()[:-1]]
    grouped["churn_rate"] = [
        float(-c / p) if p else None for c, p in zip(grouped["churned_mrr"], previous, strict=True)
    ]
    kept = [
        p + c + k if p else None
        for p, c, k in zip(
            previous, grouped["churned_mrr"], grouped["contraction_mrr"], strict=True
        )
    ]
    grouped["grr"] = [float(k / p) if p else None for k, p in zip(kept, previous, strict=True)]
    grouped["nrr"] = [
        float((k + e) / p) if p else None
        for k, e, p in zip(kept, grouped["expansion_mrr"], previous, strict=True)
    ]
    return grouped


REVENUE_PARTS = ("mrr", "net_revenue", "discount_amount", "refunded_amount", "failed_amount")


def revenue_against_mrr(by_billing_period: pd.DataFrame, partial: dt.date | None) -> pd.DataFrame:
    """Per month, monthly subscriptions' net revenue beside their MRR at the month's end (chosen
    plans summed), with what separates them: discounts, refunds and failed attempts.

    `ratio` = net revenue / MRR, for full months only: a month in progress has paid part of it.
    """
    columns = ["month", *REVENUE_PARTS, "ratio"]
    df = by_billing_period[by_billing_period["billing_period"] == "monthly"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    grouped = (
        df.groupby("month", sort=True)[list(REVENUE_PARTS)].agg(lambda s: total(s)).reset_index()
    )
    grouped["ratio"] = [
        float(n / m) if m and (partial is None or month < partial) else None
        for month, n, m in zip(
            grouped["month"], grouped["net_revenue"], grouped["mrr"], strict=True
        )
    ]
    return grouped[columns]


def retention_curve(cohorts: pd.DataFrame, partial: dt.date | None) -> pd.DataFrame:
    """Share of a cohort's customers still counted n months after joining, over every cohort
    that has reached month n in a full month (a cohort-size-weighted average)."""
    columns = ["months_since_cohort", "cohorts", "cohort_customers", "retained", "retention"]
    if cohorts.empty:
        return pd.DataFrame(columns=columns)
    df = cohorts.copy()
    df["activity_month"] = pd.to_datetime(df["activity_month"]).dt.date
    df = full_months(df, partial, "activity_month")
    grouped = (
        df.groupby("months_since_cohort", sort=True)
        .agg(
            cohorts=("cohort_month", "nunique"),
            cohort_customers=("cohort_customers", "sum"),
            retained=("retained_customers", "sum"),
        )
        .reset_index()
    )
    grouped["retention"] = [
        r / c if c else None
        for r, c in zip(grouped["retained"], grouped["cohort_customers"], strict=True)
    ]
    return grouped[columns]


def movements_long(monthly: pd.DataFrame) -> pd.DataFrame:
    """One row per month and movement, for a diverging bar chart."""
    rows = [
        {"month": m, "movement": MOVEMENT_LABELS[col], "amount": float(v)}
        for col in (*GAINS, *LOSSES, *SIGNED)
        if col in monthly.columns
        for m, v in zip(monthly["month"], monthly[col], strict=True)
    ]
    return pd.DataFrame(rows, columns=["month", "movement", "amount"])
