"Reference answer to nbs/30_losses.ipynb's exercise, and a typical mistake."
import math

def coarse_denoise(eps_fn, z, t, tau, alpha, nu=None):
    eps = eps_fn(z, t)
    h = (z - math.sqrt(1 - alpha[t]) * eps) / math.sqrt(alpha[t])
    if tau == 1: return h
    r = math.ceil((tau - 1 if nu is None else nu) * t / tau)
    return coarse_denoise(eps_fn, math.sqrt(alpha[r]) * h + math.sqrt(1 - alpha[r]) * eps, r, tau - 1, alpha, nu)

def coarse_denoise_wrong(eps_fn, z, t, tau, alpha):
    "Reads the appendix's r(τ, t) = ⌈ν·t/τ⌉ with ν = 1: one big jump to t/τ instead of τ even steps."
    return coarse_denoise(eps_fn, z, t, tau, alpha, nu=1)
