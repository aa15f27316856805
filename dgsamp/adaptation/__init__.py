"""Test-time adaptation (TTA) of a finished run's selected model: ``dgsamp adapt``.

One method per file (T3A, Tent, Tent-BN, SHOT-IM, pseudo-labelling, BN adaptation), each a
:class:`~dgsamp.adaptation.base.TestTimeAdapter` that predicts a test batch and adapts to
it; :mod:`dgsamp.adaptation.stream` runs one over a domain split, :mod:`.build` writes the
run-like directory (see docs/adaptation.md).
"""
