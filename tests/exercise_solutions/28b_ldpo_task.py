"Reference answer to nbs/28b_ldpo_task.ipynb's exercise, and a typical mistake."
import math

def saturation_gap(beta, fraction): return 2 * math.log(2 / fraction - 1) / beta

def saturation_gap_wrong(beta, fraction):
    "Takes σ(−m) ≈ e^(−m) and forgets that the start is σ(0) = ½, not 1."
    return 2 * math.log(1 / fraction) / beta
