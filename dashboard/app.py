"""The finance dashboard (Streamlit): net revenue, MRR and its movements, subscriptions, churn, ARPU."""

from __future__ import annotations

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


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner="Reading the marts…")
def load(source: str) -> dict[str, pa.Table]:
    """The contract marts; cached per source, and failures are never cached."""
    with from_env().session() as session:
        return session.read_required(CONTRACT_MARTS)


def _chart_month(df: pd.DataFrame, col: str = "month") -> pd.DataFrame:
    out = df.copy()
    out[col] = pd.to_datetime(out[col])
    return out


def _month_x(title: str = "Month") -> alt.X:
    return alt.X("yearmonth(month):T", title=title, axis=alt.Axis(format="%Y-%m"))


def _month_band(title: str = "Month") -> alt.X:
    # Bars sit on whole months: an ordinal axis shows exactly the months in the data.
    return alt.X(
        "yearmonth(month):O",
        title=title,
        axis=alt.Axis(format="%Y-%m", formatType="time", labelAngle=-45),
    )


def render_net_revenue(marts: metrics.Marts, period: str) -> None:
    st.subheader("Net revenue by plan")
    left, right = st.columns([2, 3])
    with left, st.container(key="net-revenue-by-plan"):
        st.caption("All time, from the NET_REVENUE_BY_PLAN mart")
        st.table(metrics.net_revenue_table(marts), hide_index=True)
    with right:
        monthly = _chart_month(marts.monthly_net_revenue, "revenue_month").rename(
            columns={"revenue_month": "month"}
        )
        monthly["net_revenue"] = monthly["net_revenue"].astype(float)
        chart = (
            alt.Chart(monthly, title=f"Monthly net revenue by plan, {period}")
            .mark_bar()
            .encode(
                x=_month_band(),
                y=alt.Y(
                    "sum(net_revenue):Q",
                    title="Net revenue (USD)",
                    axis=alt.Axis(format=MONEY_AXIS),
                ),
                color=alt.Color("plan_name:N", title="Plan"),
                tooltip=[
                    alt.Tooltip("yearmonth(month):T", title="Month", format="%Y-%m"),
                    alt.Tooltip("plan_name:N", title="Plan"),
                    alt.Tooltip("sum(net_revenue):Q", title="Net revenue", format="$,.2f"),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")


def render_mrr(monthly: pd.DataFrame, marts: metrics.Marts, period: str) -> None:
    st.subheader("MRR and its movements")
    left, right = st.columns(2)
    by_plan = _chart_month(marts.mrr)
    by_plan["mrr"] = by_plan["mrr"].astype(float)
    with left:
        trend = (
            alt.Chart(by_plan, title=f"MRR by plan, {period}")
            .mark_bar()
            .encode(
                x=_month_band(),
                y=alt.Y(
                    "sum(mrr):Q", title="MRR (USD)", stack=True, axis=alt.Axis(format=MONEY_AXIS)
                ),
                color=alt.Color("plan_name:N", title="Plan"),
                tooltip=[
                    alt.Tooltip("yearmonth(month):T", title="Month", format="%Y-%m"),
                    alt.Tooltip("plan_name:N", title="Plan"),
                    alt.Tooltip("sum(mrr):Q", title="MRR", format="$,.2f"),
                ],
            )
        )
        st.altair_chart(trend, width="stretch")
    with right:
        moves = _chart_month(metrics.movements_long(monthly))
        bars = (
            alt.Chart(moves, title=f"MRR movements, {period}")
            .mark_bar()
            .encode(
                x=_month_band(),
                y=alt.Y("amount:Q", title="Change in MRR (USD)", axis=alt.Axis(format=MONEY_AXIS)),
                color=alt.Color(
                    "movement:N",
                    title="Movement",
                    sort=list(metrics.MOVEMENT_LABELS.values()),
                ),
                tooltip=[
                    alt.Tooltip("yearmonth(month):T", title="Month", format="%Y-%m"),
                    alt.Tooltip("movement:N", title="Movement"),
                    alt.Tooltip("amount:Q", title="Amount", format="$,.2f"),
                ],
            )
        )
        st.altair_chart(bars, width="stretch")
    with st.expander("MRR movements by month"):
        table = pd.DataFrame(
            {
                "Month": [metrics.month_label(m) for m in monthly["month"]],
                "MRR": [metrics.money(v) for v in monthly["mrr"]],
                **{
                    label: [metrics.money(v) for v in monthly[col]]
                    for col, label in metrics.MOVEMENT_LABELS.items()
                    if col in monthly.columns
                },
            }
        )
        st.table(table, hide_index=True)


def render_subscriptions(monthly: pd.DataFrame, period: str) -> None:
    st.subheader("Active subscriptions, churn and ARPU")
    df = _chart_month(monthly)
    df["arpu"] = df["arpu"].astype(float)
    df["churn_rate"] = df["churn_rate"].astype(float)
    cols = st.columns(3)
    specs = [
        ("active_subscriptions", "Active subscriptions", "Subscriptions", ",.0f"),
        ("churn_rate", "MRR churn rate", "Churned MRR / previous MRR", ".1%"),
        ("arpu", "ARPU", "MRR per active subscription (USD)", "$,.2f"),
    ]
    for col, (field, title, axis_title, fmt) in zip(cols, specs, strict=True):
        with col:
            chart = (
                alt.Chart(df, title=f"{title}, {period}")
                .mark_line(point=True)
                .encode(
                    x=_month_x(),
                    y=alt.Y(f"{field}:Q", title=axis_title, axis=alt.Axis(format=fmt)),
                    tooltip=[
                        alt.Tooltip("yearmonth(month):T", title="Month", format="%Y-%m"),
                        alt.Tooltip(f"{field}:Q", title=title, format=fmt),
                    ],
                )
            )
            st.altair_chart(chart, width="stretch")


def render_kpis(monthly: pd.DataFrame, marts: metrics.Marts) -> None:
    revenue = metrics.total(marts.monthly_net_revenue["net_revenue"])
    last = monthly.iloc[-1] if not monthly.empty else None
    with st.container(key="kpis", horizontal=True):
        st.metric("Net revenue in period", metrics.money(revenue), border=True)
        if last is None:
            st.metric("MRR", "—", border=True)
            return
        label = metrics.month_label(last["month"])
        st.metric(f"MRR ({label})", metrics.money(last["mrr"]), border=True)
        st.metric(
            f"Active subscriptions ({label})", f"{int(last['active_subscriptions']):,}", border=True
        )
        st.metric(f"ARPU ({label})", metrics.money(last["arpu"]), border=True)
        st.metric(f"MRR churn rate ({label})", metrics.percent(last["churn_rate"]), border=True)


def main() -> None:
    st.set_page_config(page_title="mdp · Finance", layout="wide")
    st.title("Finance")
    try:
        warehouse = from_env()
        source = warehouse.description
        tables = load(source)
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
    with st.sidebar:
        st.header("Filters")
        plans = st.multiselect("Plans", marts.plans, default=marts.plans)
        if len(months) > 1:
            start, end = st.select_slider(
                "Months",
                options=months,
                value=(months[0], months[-1]),
                format_func=metrics.month_label,
            )
        else:
            start = end = months[0]
        if st.button("Reload from the warehouse"):
            load.clear()
            st.rerun()
        st.caption(f"Source: {source}. Refreshed every {REFRESH_SECONDS} s.")
    if not plans:
        st.info("Choose at least one plan in the filters.")
        st.stop()

    period = f"{metrics.month_label(start)} to {metrics.month_label(end)}"
    chosen = marts.filtered(plans, start, end)
    monthly = metrics.monthly_mrr(chosen)
    render_kpis(monthly, chosen)
    render_net_revenue(chosen, period)
    render_mrr(monthly, chosen, period)
    render_subscriptions(monthly, period)


main()
