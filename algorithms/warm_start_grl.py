"""tllib's warm-start gradient reversal layer, with tllib's defaults.

    forward:  R(x) = x
    backward: ∂L/∂x = −λ_i · ∂L/∂R(x)
    λ_i = 2 (hi − lo) / (1 + exp(−α i / N)) − (hi − lo) + lo

with i the number of forward calls so far (``auto_step``) and tllib's constants α = 1,
lo = 0, hi = 1, N = ``max_iters`` = 1000: λ starts at 0 and reaches 0.46 after 1,000
steps, 0.76 after 2,000 and 0.96 after 4,000 (tllib's DANN, CDAN and BSP losses build it
so). The schedule is the one in ``grl.py`` (written there as lo + (hi − lo)(2 / (1 + e^{−αi/N})
− 1)), whose defaults are DomainBed's (α = 10, stepped by hand); this layer only fixes
tllib's numbers and steps itself, so a loss module owning it behaves as tllib's does.

State: i lives in a ``StepCounter`` buffer (``steps.count``), so a checkpoint restores the
warm start after a SIGKILL. A GradSamp epoch calls no ``forward`` and has no parameter
here: i does not move while the other weights are sampled.

Reference: tllib tllib/modules/grl.py @ c4aa59e (``WarmStartGradientReverseLayer``);
Ganin et al., JMLR 2016, arXiv:1505.07818, §5.2.2 (the schedule).
"""

from __future__ import annotations

from dgsamp.algorithms.grl import WarmStartGradientReverseLayer

TLLIB_WARM_START = {"alpha": 1.0, "lo": 0.0, "hi": 1.0, "max_iters": 1000}
"""The constants every tllib adversarial loss passes (tllib/alignment/dann.py, cdan.py)."""


class TllibWarmStartGRL(WarmStartGradientReverseLayer):
    """R_λ(x) for any tensor shape, λ following tllib's warm start and advancing once per forward."""

    def __init__(
        self,
        alpha: float = TLLIB_WARM_START["alpha"],
        lo: float = TLLIB_WARM_START["lo"],
        hi: float = TLLIB_WARM_START["hi"],
        max_iters: int = TLLIB_WARM_START["max_iters"],
    ) -> None:
        super().__init__(alpha=alpha, lo=lo, hi=hi, max_iters=int(max_iters), auto_step=True)
