"""The dashboard's figures, computed from the marts as pandas frames (no Streamlit here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pyarrow as pa

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


def money(value: object) -> str:
    """US dollars to the cent, rounded half away from zero: `$1,234.56`, `-$7.00`, `—` for none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def percent(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def month_label(value: dt.date) -> str:
    return value.strftime("%Y-%m")


def _as_decimal(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


@dataclass(frozen=True)
class Marts:
    """The three contract marts as frames, with month columns as `datetime.date`."""

    net_revenue: pd.DataFrame
    monthly_net_revenue: pd.DataFrame
    mrr: pd.DataFrame

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
        return Marts(nr, mnr, mrr)


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
    previous month. Movements are shown with the sign of their effect: losses negative,
    whatever sign the mart stores them with.
    """
    df = marts.mrr
    signed = [c for c in SIGNED if c in df.columns]
    columns = ["mrr", "active_subscriptions", *GAINS, *LOSSES, *signed]
    if df.empty:
        return pd.DataFrame(columns=["month", *columns, "arpu", "churn_rate"])
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
    return grouped


def movements_long(monthly: pd.DataFrame) -> pd.DataFrame:
    """One row per month and movement, for a diverging bar chart."""
    rows = [
        {"month": m, "movement": MOVEMENT_LABELS[col], "amount": float(v)}
        for col in (*GAINS, *LOSSES, *SIGNED)
        if col in monthly.columns
        for m, v in zip(monthly["month"], monthly[col], strict=True)
    ]
    return pd.DataFrame(rows, columns=["month", "movement", "amount"])
