"""Weight-averaging training modes: EMA (``ema.py``), SMA (``sma.py``) and SWAD (``swad.py``,
window from ``valley.py``), over the shared weight arithmetic (``weights.py``) and
BatchNorm re-estimation (``batchnorm.py``). See docs/modes.md."""
