"""Import the built-in training modes so that their ``@register_mode`` runs (order matters:
the trainer calls modes in registration order)."""

from dgsamp.modes.gradsamp import mode as gradsamp_mode  # noqa: F401
from dgsamp.modes.ssprop import mode as ssprop_mode  # noqa: F401
