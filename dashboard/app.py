"""The finance dashboard (Streamlit): net revenue, MRR and its movements, subscriptions, churn, retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import altair as alt
import pandas as pd
import pyarrow as pa
import streamlit as st

from core.warehouse import (
    CONTRACT_MARTS,
    NoDataYet,
    WarehouseBusy,
    WarehouseError,
    from_env,
)
from dashboard import metrics

MONEY_AXIS = "$,.0f"
REFRESH_SECONDS = 60
CHART_HEIGHT = 280


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner="Reading the marts…")
def load(source: str) -> tuple[dict[str, pa.Table], metrics.AsOf]:
    """The marts and how current they are; cached per source, and failures are never cached."""
    warehouse = from_env()
    with warehouse.session() as session:
        tables = session.read_required(CONTRACT_MARTS)
        for name in metrics.OPTIONAL_MARTS:
            ref = session.find(name)
            if ref is not None:
                tables[name] = session.read(ref)
        as_of = metrics.read_as_of(session)
    return tables, as_of


def _heading(title: str, key: str) -> None:
    """A chart's title as page text: it wraps instead of being cut off."""
    with st.container(key=f"title-{key}"):
        st.markdown(f"**{title}**")


def _with_labels(df: pd.DataFrame, partial: dt.date | None, col: str = "month") -> pd.DataFrame:
    out = df.copy()
    out["month_label"] = [metrics.month_label(m, partial) for m in out[col]]
    return out


def _month_band(labels: list[str]) -> alt.X:
    # Bars sit on whole months; the month in progress says "(partial)" on its label.
    return alt.X("month_label:O", title=None, sort=labels, axis=alt.Axis(labelAngle=-45))


def _by_month_and_series(
    chart: alt.Chart,
    labels: list[str],
    y: alt.Y,
    series: str,
    title: str,
    value: alt.Tooltip,
    **color: Any,
) -> alt.Chart:
    # Months along x and a colour per series; the tooltip names the month, the series, the value.
    return chart.encode(
        x=_month_band(labels),
        y=y,
        color=alt.Color(f"{series}:N", title=title, **color),
        tooltip=[
            alt.Tooltip("month_label:O", title="Month"),
            alt.Tooltip(f"{series}:N", title=title),
            value,
        ],
    )


def _chart(chart: alt.Chart) -> None:
    st.altair_chart(chart.properties(height=CHART_HEIGHT), width="stretch")


def render_as_of(as_of: metrics.AsOf, partial: dt.date | None) -> None:
    with st.container(key="as-of"):
        note = metrics.as_of_line(as_of)
        if partial is not None:
            note += (
                f". {metrics.month_label(partial)} is in progress and marked partial; "
                "rates use full months only."
            )
        st.caption(note)


def render_kpis(
    monthly: pd.DataFrame, marts: metrics.Marts, partial: dt.date | None, period: str
) -> None:
    revenue = metrics.total(marts.monthly_net_revenue["net_revenue"])
    full = metrics.full_months(monthly, partial)
    last = monthly.iloc[-1] if not monthly.empty else None
    done = full.iloc[-1] if not full.empty else None
    by_month = marts.monthly_net_revenue.groupby("revenue_month")["net_revenue"]
    month_revenue = (
        metrics.total(by_month.get_group(done["month"]))
        if done is not None and done["month"] in by_month.groups
        else None
    )
    help_ = metrics.KPI_HELP
    latest: list[tuple[str, str, str]] = [
        ("MRR", metrics.money(last["mrr"] if last is not None else None), help_["mrr"]),
        (
            "ARR",
            metrics.money(last["arr"] if last is not None and "arr" in last else None),
            help_["arr"],
        ),
        (
            "Active subscriptions",
            f"{int(last['active_subscriptions']):,}" if last is not None else "—",
            help_["active_subscriptions"],
        ),
        ("ARPU", metrics.money(last["arpu"] if last is not None else None), help_["arpu"]),
    ]
    closed: list[tuple[str, str, str]] = [
        ("Net revenue", metrics.money(month_revenue), help_["net_revenue_month"]),
        (
            "MRR churn rate",
            metrics.percent(done["churn_rate"] if done is not None else None),
            help_["churn_rate"],
        ),
        ("NRR", metrics.percent(done["nrr"] if done is not None else None), help_["nrr"]),
        (
            "Net revenue in period",
            metrics.money(revenue),
            f"{period}. {help_['net_revenue_period']}",
        ),
    ]
    now = metrics.month_label(last["month"], partial) if last is not None else "—"
    full_month = metrics.month_label(done["month"]) if done is not None else "—"
    # Two full rows of four: no card is left alone on a row.
    with st.container(key="kpis"):
        for key, caption, row in (
            ("latest", f"Latest state: {now}", latest),
            ("full-month", f"Last full month: {full_month}", closed),
        ):
            st.caption(caption)
            with st.container(key=f"kpis-{key}"):
                for column, (label, value, help_text) in zip(st.columns(4), row, strict=True):
                    with column:
                        st.metric(label, value, help=help_text, border=True)


def render_net_revenue(
    marts: metrics.Marts, monthly: pd.DataFrame, partial: dt.date | None
) -> None:
    st.subheader("Net revenue")
    left, right = st.columns([2, 3])
    with left, st.container(key="net-revenue-by-plan"):
        _heading("Net revenue by plan, all time", "net-revenue-by-plan")
        st.table(metrics.net_revenue_table(marts), hide_index=True)
    with right:
        _heading("Monthly net revenue by plan, and MRR", "monthly-net-revenue")
        revenue = marts.monthly_net_revenue.rename(columns={"revenue_month": "month"})
        revenue = _with_labels(revenue, partial)
        revenue["net_revenue"] = revenue["net_revenue"].astype(float)
        labels = [metrics.month_label(m, partial) for m in sorted(set(revenue["month"]))]
        bars = _by_month_and_series(
            alt.Chart(revenue).mark_bar(),
            labels,
            alt.Y(
                "sum(net_revenue):Q", title="Net revenue (USD)", axis=alt.Axis(format=MONEY_AXIS)
            ),
            "plan_name",
            "Plan",
            alt.Tooltip("sum(net_revenue):Q", title="Net revenue", format="$,.2f"),
        )
        # MRR at each month's end over the bars: a month's net revenue should track it, less
        # discounts, failed payments and refunds.
        mrr = _with_labels(monthly[["month", "mrr"]], partial)
        mrr = mrr[mrr["month_label"].isin(labels)].copy()
        mrr["mrr"] = mrr["mrr"].astype(float)
        line = (
            alt.Chart(mrr)
            .mark_line(point=True, color="black")
            .encode(
                x=_month_band(labels),
                y=alt.Y("mrr:Q"),
                tooltip=[
                    alt.Tooltip("month_label:O", title="Month"),
                    alt.Tooltip("mrr:Q", title="MRR at month end", format="$,.2f"),
                ],
            )
        )
        _chart(bars + line)
        st.caption(
            "Bars: net revenue by plan. Line: MRR at the month's end (chosen plans). Annual "
            "subscriptions pay twelve months up front, so a growing year's net revenue runs "
            "above MRR; monthly ones pay MRR less discounts, failed payments and refunds."
        )


def render_revenue_against_mrr(marts: metrics.Marts, partial: dt.date | None) -> None:
    with st.container(key="revenue-vs-mrr"):
        _heading("Monthly subscriptions: net revenue against MRR", "revenue-vs-mrr")
        if marts.by_billing_period is None:
            st.info(
                f"The mart {metrics.BY_BILLING_PERIOD} is not built in this warehouse; "
                "the next pipeline run builds it."
            )
            return
        df = metrics.revenue_against_mrr(marts.by_billing_period, partial)
        if df.empty:
            st.info("No monthly subscriptions in the chosen plans and months.")
            return
        df = _with_labels(df, partial)
        labels = list(df["month_label"])
        series = {"mrr": "MRR at month end", "net_revenue": "Net revenue"}
        long = df.melt(
            id_vars=["month_label"],
            value_vars=list(series),
            var_name="series",
            value_name="amount",
        )
        long["series"] = long["series"].map(series)
        long["amount"] = long["amount"].astype(float)
        long["partial"] = long["month_label"].str.endswith("(partial)")
        # Side by side per month: a full month's net revenue sits a little below its MRR. The
        # month in progress is faded: it has paid only part of its MRR so far.
        bars = _by_month_and_series(
            alt.Chart(long).mark_bar(),
            labels,
            alt.Y("amount:Q", title="USD", axis=alt.Axis(format=MONEY_AXIS)),
            "series",
            "Series",
            alt.Tooltip("amount:Q", title="Amount", format="$,.2f"),
            sort=list(series.values()),
        ).encode(
            xOffset=alt.XOffset("series:N", sort=list(series.values())),
            opacity=alt.condition(alt.datum.partial, alt.value(0.4), alt.value(1.0)),
        )
        _chart(bars)
        st.caption(
            "Monthly subscriptions pay their MRR once a month, less discounts, failed payments "
            "and refunds; subscriptions that leave during a month may have paid for it first. "
            "The month in progress is marked partial and has no ratio."
        )
        table = pd.DataFrame(
            {
                "Month": labels,
                "MRR at month end": [metrics.money(v) for v in df["mrr"]],
                "Net revenue": [metrics.money(v) for v in df["net_revenue"]],
                "Discounts": [metrics.money(v) for v in df["discount_amount"]],
                "Refunded": [metrics.money(v) for v in df["refunded_amount"]],
                "Failed attempts": [metrics.money(v) for v in df["failed_amount"]],
                "Net revenue / MRR": [metrics.percent(v) for v in df["ratio"]],
            }
        )
        with st.expander("Net revenue against MRR by month, monthly subscriptions"):
            st.table(table, hide_index=True)


def render_mrr(monthly: pd.DataFrame, marts: metrics.Marts, partial: dt.date | None) -> None:
    st.subheader("MRR and its movements")
    left, right = st.columns(2)
    by_plan = _with_labels(marts.mrr, partial)
    by_plan["mrr"] = by_plan["mrr"].astype(float)
    labels = [metrics.month_label(m, partial) for m in sorted(set(by_plan["month"]))]
    with left:
        _heading("MRR by plan", "mrr-by-plan")
        trend = _by_month_and_series(
            alt.Chart(by_plan).mark_bar(),
            labels,
            alt.Y("sum(mrr):Q", title="MRR (USD)", stack=True, axis=alt.Axis(format=MONEY_AXIS)),
            "plan_name",
            "Plan",
            alt.Tooltip("sum(mrr):Q", title="MRR", format="$,.2f"),
        )
        _chart(trend)
    with right:
        _heading("MRR movements", "mrr-movements")
        moves = _with_labels(metrics.movements_long(monthly), partial)
        bars = _by_month_and_series(
            alt.Chart(moves).mark_bar(),
            labels,
            alt.Y("amount:Q", title="Change in MRR (USD)", axis=alt.Axis(format=MONEY_AXIS)),
            "movement",
            "Movement",
            alt.Tooltip("amount:Q", title="Amount", format="$,.2f"),
            sort=list(metrics.MOVEMENT_LABELS.values()),
        )
        _chart(bars)
    with st.expander("MRR movements by month"):
        table = pd.DataFrame(
            {
                "Month": [metrics.month_label(m, partial) for m in monthly["month"]],
                "MRR": [metrics.money(v) for v in monthly["mrr"]],
                **{
                    label: [metrics.money(v) for v in monthly[col]]
                    for col, label in metrics.MOVEMENT_LABELS.items()
                    if col in monthly.columns
                },
            }
        )
        st.table(table, hide_index=True)


def _line(df: pd.DataFrame, field: str, title: str, fmt: str, labels: list[str]) -> alt.Chart:
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=_month_band(labels),
            y=alt.Y(f"{field}:Q", title=title, axis=alt.Axis(format=fmt)),
            tooltip=[
                alt.Tooltip("month_label:O", title="Month"),
                alt.Tooltip(f"{field}:Q", title=title, format=fmt),
            ],
        )
    )


def render_subscriptions(monthly: pd.DataFrame, partial: dt.date | None) -> None:
    st.subheader("Subscriptions and ARPU")
    df = _with_labels(monthly, partial)
    df["arpu"] = df["arpu"].astype(float)
    labels = list(df["month_label"])
    left, right = st.columns(2)
    with left:
        _heading("Active subscriptions at month end", "active-subscriptions")
        _chart(_line(df, "active_subscriptions", "Subscriptions", ",.0f", labels))
    with right:
        _heading("ARPU: MRR per active subscription", "arpu")
        _chart(_line(df, "arpu", "USD", "$,.2f", labels))


def render_churn_and_retention(
    monthly: pd.DataFrame, cohorts: pd.DataFrame | None, partial: dt.date | None
) -> None:
    st.subheader("Churn and retention (full months only)")
    full = _with_labels(metrics.full_months(monthly, partial), partial).dropna(
        subset=["churn_rate"]
    )
    left, right = st.columns(2)
    with left:
        _heading("MRR churn rate, GRR and NRR by month", "churn")
        rates = full.melt(
            id_vars=["month_label"],
            value_vars=["churn_rate", "grr", "nrr"],
            var_name="rate",
            value_name="value",
        )
        rates["rate"] = rates["rate"].map(
            {"churn_rate": "MRR churn rate", "grr": "GRR", "nrr": "NRR"}
        )
        rates["value"] = rates["value"].astype(float)
        chart = _by_month_and_series(
            alt.Chart(rates).mark_line(point=True),
            list(full["month_label"]),
            alt.Y("value:Q", title="Share of last month's MRR", axis=alt.Axis(format=".0%")),
            "rate",
            "Rate",
            alt.Tooltip("value:Q", title="Value", format=".1%"),
        )
        _chart(chart)
    with right:
        _heading("Customer retention by months since joining, all plans", "retention")
        if cohorts is None:
            st.info("The cohort mart (cohort_retention_monthly) is not built in this warehouse.")
            return
        curve = metrics.retention_curve(cohorts, partial)
        curve["retention"] = curve["retention"].astype(float)
        chart = (
            alt.Chart(curve)
            .mark_line(point=True)
            .encode(
                x=alt.X("months_since_cohort:Q", title="Months since joining"),
                y=alt.Y(
                    "retention:Q",
                    title="Customers retained",
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                tooltip=[
                    alt.Tooltip("months_since_cohort:Q", title="Months since joining"),
                    alt.Tooltip("retention:Q", title="Retained", format=".1%"),
                    alt.Tooltip("cohorts:Q", title="Cohorts"),
                    alt.Tooltip("cohort_customers:Q", title="Customers", format=","),
                ],
            )
        )
        _chart(chart)


def main() -> None:
    st.set_page_config(page_title="mdp · Finance", layout="wide")
    st.title("Finance")
    try:
        warehouse = from_env()
        source = warehouse.description
        tables, as_of = load(source)
    except NoDataYet as exc:
        st.info(str(exc), icon=":material/hourglass_empty:")
        st.stop()
    except WarehouseBusy as exc:
        st.warning(str(exc), icon=":material/sync:")
        st.button("Try again")
        st.stop()
    except WarehouseError as exc:
        st.error(str(exc))
        st.stop()

    marts = metrics.Marts.from_arrow(tables)
    months = marts.months
    # The month of the last load is in progress; without a load time, the newest month is.
    partial = as_of.current_month or (months[-1] if months else None)
    with st.sidebar:
        st.header("Filters")
        plans = st.multiselect("Plans", marts.plans, default=marts.plans)
        if len(months) > 1:
            start, end = st.select_slider(
                "Months",
                options=months,
                value=(months[0], months[-1]),
                format_func=lambda m: metrics.month_label(m, partial),
            )
        else:
            start = end = months[0]
        if st.button("Reload from the warehouse"):
            load.clear()
            st.rerun()
        st.caption(f"Source: {source}. Refreshed every {REFRESH_SECONDS} s.")
    render_as_of(as_of, partial)
    if not plans:
        st.info("Choose at least one plan in the filters.")
        st.stop()

    period = f"{metrics.month_label(start, partial)} to {metrics.month_label(end, partial)}"
    st.caption(f"Months {period}; plans: {', '.join(plans)}.")
    chosen = marts.filtered(plans, start, end)
    monthly = metrics.monthly_mrr(chosen)
    cohorts: Any = tables.get("cohort_retention_monthly")
    render_kpis(monthly, chosen, partial, period)
    render_net_revenue(chosen, monthly, partial)
    render_revenue_against_mrr(chosen, partial)
    render_mrr(monthly, chosen, partial)
    render_subscriptions(monthly, partial)
    render_churn_and_retention(
        monthly, cohorts.to_pandas() if cohorts is not None else None, partial
    )


main()
