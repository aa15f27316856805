"""Import the built-in training modes so that their ``@register_mode`` runs, in this order:
the trainer calls modes in registration order, so the averaging modes come after GradSamp
and ssProp and average the weights those produce."""

import importlib

BUILTIN_MODE_MODULES = (
    "dgsamp.modes.gradsamp.mode",
    "dgsamp.modes.ssprop.mode",
    "dgsamp.modes.averaging.ema",
    "dgsamp.modes.averaging.sma",
    "dgsamp.modes.averaging.swad",
)

for _module in BUILTIN_MODE_MODULES:
    importlib.import_module(_module)
