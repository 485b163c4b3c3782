"Reference answer to nbs/24_pipeline.ipynb's exercise, and a typical mistake."
import math
import torch

def flux_sigmas(steps, n_tokens, exp=math.exp):
    mu = .5 + (1.15 - .5) * (n_tokens - 256) / (4096 - 256)
    s = torch.linspace(1., 1 / steps, steps, dtype=torch.float64)
    return (exp(mu) / (exp(mu) + 1 / s - 1)).float()

def flux_sigmas_wrong(steps, n_tokens):
    "Shifts with μ itself instead of e^μ."
    return flux_sigmas(steps, n_tokens, exp=lambda mu: mu)
