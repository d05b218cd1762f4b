"""Great Expectations suites of the option tables, run by their blocking `quality_gate` checks.

They restate the column contracts and the main row rules (`options.rules`) in GX's vocabulary, as the
market-data suites do (`core.quality.gx_suites`, whose ephemeral context and runner they share). GX
is imported inside the functions: the import costs seconds.

* every table: columns present, keys not null, one row per key and day;
* option_quotes: bid <= ask, prices and volume >= 0, underlying price > 0, slots of the day's
  schedule only;
* option_daily: a mid between bid and ask;
* option_greeks: IV in [MIN_IV, MAX_IV], |delta| <= 1, gamma and vega >= 0, t_years > 0.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from quant_platform.core.schema import COLD_TABLES
from quant_platform.options.rules import MAX_IV, MIN_IV

KEYS = {
    "option_contracts": ["trade_date", "symbol"],
    "option_quotes": ["trade_date", "symbol", "slot"],
    "option_daily": ["trade_date", "symbol"],
    "option_greeks": ["trade_date", "symbol"],
}


def build_suite(table: str, slots: list[str] | None = None):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from quant_platform.core.quality.gx_suites import gx_context

    gx_context()
    schema = COLD_TABLES[table]
    suite = gx.ExpectationSuite(name=f"{table}.options")

    def add(name: str, expectation) -> None:
        expectation.meta = {"name": name}
        suite.add_expectation(expectation)

    add("columns_present", gxe.ExpectTableColumnsToMatchSet(column_set=schema.names, exact_match=False))
    for col in KEYS[table]:
        add(f"not_null.{col}", gxe.ExpectColumnValuesToNotBeNull(column=col))
    add(f"unique.{'+'.join(KEYS[table])}", gxe.ExpectCompoundColumnsToBeUnique(column_list=KEYS[table]))

    def between(col: str, low=None, high=None, strict_min: bool = False) -> None:
        add(
            f"range.{col}",
            gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=low, max_value=high, strict_min=strict_min
            ),
        )

    if table == "option_quotes":
        add(
            "bid<=ask",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ask", column_B="bid", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
        )
        for col in ("bid", "ask", "last", "volume"):
            between(col, 0)
        between("underlying_price", 0, strict_min=True)
        if slots:
            add("slot.schedule", gxe.ExpectColumnValuesToBeInSet(column="slot", value_set=slots))
    elif table == "option_daily":
        add(
            "mid<=ask",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ask", column_B="mid", or_equal=True),
        )
        add(
            "mid>=bid",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="mid", column_B="bid", or_equal=True),
        )
    elif table == "option_greeks":
        between("iv", MIN_IV, MAX_IV)
        between("delta", -1.0, 1.0)
        between("gamma", 0)
        between("vega", 0)
        between("t_years", 0, strict_min=True)
    elif table == "option_contracts":
        between("strike", 0, strict_min=True)
        add("kind", gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["call", "put"]))
    return suite


def validate(table: str, df: pd.DataFrame, day: dt.date, slots: list[str] | None = None):
    """The table's suite run on `df` (GxResult of `core.quality.gx_suites`)."""
    from quant_platform.core.quality.gx_suites import _run_suite

    return _run_suite(COLD_TABLES[table], df, build_suite(table, slots), day, 5)
