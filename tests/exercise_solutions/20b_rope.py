"Reference answer to nbs/20b_rope.ipynb's exercise, and a typical mistake."
import torch

def kernel(dp, axes_dim=(16, 56, 56), theta=10000., half=2):
    "Mean over RoPE's frequency pairs of cos(ω·Δp), ω = θ^(-2j/d) for pair j of an axis with d channels."
    cos = [torch.cos(float(p) * theta ** (-half * torch.arange(d // 2) / d)) for p, d in zip(dp, axes_dim)]
    return torch.cat(cos).mean()

def kernel_wrong(dp, axes_dim=(16, 56, 56), theta=10000.):
    "Frequencies θ^(-j/d): one per channel instead of one per channel pair."
    return kernel(dp, axes_dim, theta, half=1)
