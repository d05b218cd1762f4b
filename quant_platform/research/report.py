"""One backtest run as a single self-contained HTML file: interactive equity and drawdown charts
(plotly.js embedded inline, so it opens without a network), the stats, what ran (strategy,
parameters, data and code versions) and the trades in pages.

What is shown comes from the run's record and results only; a strategy's source code is never
read, so it cannot leak into a report someone shares. Every value is HTML-escaped, and the trades
travel as JSON that cannot close its script element.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import pandas as pd

from quant_platform.core.plots import drawdown
from quant_platform.research.compare import LEADING_STATS
from quant_platform.research.runs import RunResult

PAGE_SIZE = 50  # trades per page
CHART_ID = "charts"
TRADE_COLUMNS = (
    "symbol",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "commission",
    "is_open",
)
RATIO_STATS = {
    "total_return",
    "annual_return",
    "median_total_return",
    "max_drawdown",
    "win_rate",
    "volatility",
    "exposure",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;max-width:1100px;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem} h2{font-size:1.1rem;margin-top:1.8rem}
.meta{color:#666;font-size:.9rem} table{border-collapse:collapse;font-size:.85rem}
th,td{border-bottom:1px solid #e3e3e3;padding:.25rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} .kv th{color:#555;font-weight:500}
.grid{display:flex;gap:2.5rem;flex-wrap:wrap} .warn{color:#9a5b00}
.pager{margin:.6rem 0;display:flex;gap:.6rem;align-items:center} button{padding:.2rem .7rem}
"""

# A dependency-free pager over the JSON trades: renders one page of rows into the table body.
_PAGER_JS = """
(function(){
  var data = JSON.parse(document.getElementById('trades-data').textContent);
  var size = %(size)d, page = 0, pages = Math.max(1, Math.ceil(data.rows.length / size));
  var body = document.querySelector('#trades tbody'), label = document.getElementById('trades-page');
  var prev = document.getElementById('trades-prev'), next = document.getElementById('trades-next');
  function cell(v, numeric){
    var td = document.createElement('td');
    if (numeric) td.className = 'num';
    td.textContent = v === null ? '' : String(v);
    return td;
  }
  function show(p){
    page = Math.min(Math.max(p, 0), pages - 1);
    body.replaceChildren();
    data.rows.slice(page * size, (page + 1) * size).forEach(function(row){
      var tr = document.createElement('tr');
      row.forEach(function(v, i){ tr.appendChild(cell(v, data.numeric[i])); });
      body.appendChild(tr);
    });
    label.textContent = 'page ' + (page + 1) + ' of ' + pages;
    prev.disabled = page === 0; next.disabled = page >= pages - 1;
  }
  prev.addEventListener('click', function(){ show(page - 1); });
  next.addEventListener('click', function(){ show(page + 1); });
  show(0);
})();
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(name: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.2%}" if name in RATIO_STATS else f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _kv_table(items: list[tuple[str, Any]]) -> str:
    rows = "".join(
        f"<tr><th>{_esc(k)}</th><td class=num>{_esc(_fmt(k, v))}</td></tr>"
        if isinstance(v, int | float) and not isinstance(v, bool)
        else f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(k, v))}</td></tr>"
        for k, v in items
    )
    return f'<table class="kv">{rows}</table>'


def _naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx


def chart_html(equity: pd.Series, title: str) -> str:
    """Equity above, drawdown below, one shared zoomable time axis with a range selector and slider."""
    from plotly.subplots import make_subplots

    x = _naive_utc(equity.index)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.68, 0.32])
    fig.add_scatter(x=x, y=equity.to_numpy(float), name="equity", line={"width": 1.6}, row=1, col=1)
    fig.add_scatter(
        x=x,
        y=drawdown(equity).to_numpy(float),
        name="drawdown",
        fill="tozeroy",
        line={"width": 1, "color": "#d62728"},
        row=2,
        col=1,
    )
    buttons = [
        {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
        {"count": 3, "label": "3m", "step": "month", "stepmode": "backward"},
        {"count": 6, "label": "6m", "step": "month", "stepmode": "backward"},
        {"count": 1, "label": "YTD", "step": "year", "stepmode": "todate"},
        {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
        {"step": "all", "label": "all"},
    ]
    fig.update_layout(
        title={"text": html.escape(title), "font": {"size": 14}},  # plotly reads titles as HTML
        height=560,
        margin={"l": 60, "r": 20, "t": 70, "b": 30},
        showlegend=False,
        hovermode="x unified",
        xaxis={"rangeselector": {"buttons": buttons}},
        xaxis2={"rangeslider": {"visible": True, "thickness": 0.06}, "title": {"text": "time (UTC)"}},
        yaxis={"title": {"text": "equity"}},
        yaxis2={"title": {"text": "drawdown"}, "tickformat": ".0%"},
    )
    return fig.to_html(
        full_html=False,
        include_plotlyjs=True,  # inline: the file opens without a network
        div_id=CHART_ID,
        config={"displaylogo": False, "responsive": True},
    )


def _trades_payload(trades: pd.DataFrame) -> tuple[list[str], list[list[Any]], list[bool]]:
    cols = [c for c in TRADE_COLUMNS if c in trades.columns]
    frame = trades[cols].copy()
    for c in cols:
        if pd.api.types.is_datetime64_any_dtype(frame[c]):
            frame[c] = _naive_utc(frame[c]).strftime("%Y-%m-%d %H:%M")
        elif pd.api.types.is_float_dtype(frame[c]):
            frame[c] = frame[c].round(4)
    if "entry_time" in cols:
        frame = frame.sort_values(["entry_time", *(["symbol"] if "symbol" in cols else [])], kind="stable")
    numeric = [
        pd.api.types.is_numeric_dtype(trades[c]) and not pd.api.types.is_bool_dtype(trades[c]) for c in cols
    ]
    rows = json.loads(frame.to_json(orient="values"))
    return cols, rows, numeric


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no '<' can start '</script>' or '<!--'."""
    return (
        json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


def _trades_section(trades: pd.DataFrame, page_size: int) -> str:
    cols, rows, numeric = _trades_payload(trades)
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    first = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if n else ''}>{_esc('' if v is None else v)}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows[:page_size]
    )  # the first page without JavaScript too
    payload = _script_json({"columns": cols, "rows": rows, "numeric": numeric})
    return (
        f"<h2>Trades ({len(rows):,})</h2>"
        '<div class="pager"><button id="trades-prev" type="button">previous</button>'
        '<span id="trades-page">page 1</span>'
        '<button id="trades-next" type="button">next</button></div>'
        f'<table id="trades"><thead><tr>{head}</tr></thead><tbody>{first}</tbody></table>'
        f'<script type="application/json" id="trades-data">{payload}</script>'
        f"<script>{_PAGER_JS % {'size': page_size}}</script>"
    )


def render_report(result: RunResult, *, page_size: int = PAGE_SIZE) -> str:
    """The whole report of `result` as one HTML document (a few MB: plotly.js is inline)."""
    run, stats = result.run, result.stats
    warnings = [str(w) for w in stats.pop("warnings", []) or []]
    window = stats.pop("window", None)
    params_source = stats.pop("params_source", None)
    order = {name: i for i, name in enumerate(LEADING_STATS)}  # the headline figures first
    scalars = sorted(
        ((k, v) for k, v in stats.items() if not isinstance(v, list | dict)),
        key=lambda kv: order.get(kv[0], len(order)),
    )
    what = [
        ("strategy", run.strategy),
        *sorted((f"param {k}", v) for k, v in (run.params or {}).items()),
        ("parameters from", params_source or "-"),
        ("window", " .. ".join(window) if window else "-"),
        ("data version", run.data_version or "-"),
        ("code version", run.code_version or "-"),
        ("result hash", run.result_hash or "-"),
    ]
    when = f"finished {run.finished_at:%Y-%m-%d %H:%M} UTC" if run.finished_at else ""
    warn = "".join(f'<p class="warn">warning: {_esc(w)}</p>' for w in warnings)
    title = f"{run.strategy} backtest {run.id}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_esc(run.strategy)} backtest</h1>"
        f'<p class="meta">run {_esc(run.id)} · {_esc(str(run.status))} {_esc(when)}</p>{warn}'
        f"{chart_html(result.equity, title)}"
        '<div class="grid">'
        f"<div><h2>Statistics</h2>{_kv_table(scalars)}</div>"
        f"<div><h2>What ran</h2>{_kv_table(what)}</div>"
        "</div>"
        f"{_trades_section(result.trades, page_size)}"
        '<p class="meta">quant-platform backtest report</p>'
        "</body></html>\n"
    )
