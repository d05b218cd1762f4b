"""`python -m quant_platform.collector --url ws://... --pairs BTC-USDT,ETH-USDT`."""

from quant_platform.collector.cli import main

main()
