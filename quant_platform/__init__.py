"""quant-platform: Dagster-orchestrated market data, data quality and backtests."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quant-platform")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"
