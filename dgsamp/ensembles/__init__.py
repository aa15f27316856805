"""Ensembles of finished runs: EoA (mean logits of the runs' averaged models) and DiWA
(the runs' weights averaged, uniformly or greedily), built by ``dgsamp ensemble``.

Kept free of torch imports so the leaderboard can name the methods cheaply
(:mod:`dgsamp.tracking.ensemble_naming`); the building blocks live one per module.
"""
