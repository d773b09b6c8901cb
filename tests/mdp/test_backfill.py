"""`mdp backfill`'s range: one run per day, in order; a bad range is refused before anything runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from mdp.backfill import BackfillRangeError, backfill_days
from mdp.cli import app

TODAY = date(2026, 3, 20)


def test_a_range_is_one_run_per_day_both_ends_included() -> None:
    days = backfill_days(date(2026, 3, 10), date(2026, 3, 12), TODAY)
    assert days == [datetime(2026, 3, d, tzinfo=UTC) for d in (10, 11, 12)]
    assert backfill_days(TODAY, TODAY, TODAY) == [datetime(2026, 3, 20, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (date(2026, 3, 12), date(2026, 3, 10), "--from 2026-03-10 --to 2026-03-12"),
        (date(2026, 3, 10), date(2026, 3, 21), "--to 2026-03-20 at the latest"),
        (date(2024, 1, 1), date(2026, 3, 1), "split the range"),
    ],
)
def test_a_bad_range_says_which_range_would_run(first: date, last: date, message: str) -> None:
    with pytest.raises(BackfillRangeError, match=message):
        backfill_days(first, last, TODAY)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-12", "--to", "2026-03-10"], "Nothing was run"),
        (["--from", "10/03/2026"], "is not a day such as 2026-03-10"),
    ],
)
def test_the_command_refuses_a_bad_range_before_starting_airflow(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["backfill", *args])
    assert result.exit_code == 2
    assert message in result.output
