"Reference answers to nbs/28_ldpo.ipynb's exercises, and a typical mistake for each."
import numpy as np
import torch
import torch.nn.functional as F
from dreamfuse_lit.world.compositing import paste
from dreamfuse_lit.world.triplets import load_triplets
from dreamfuse_lit.dreamfuse.ldpo import localized_mask

def _alpha_tokens():
    "The smallest α on a 0.05 grid whose mask holds every token with a pixel changed by more than 8."
    row = load_triplets()[8]
    (h, w), box = row["fused"].shape[:2], row["box"]
    diff = np.abs(row["fused"].astype(int) - paste(row["background"], row["foreground"], row["foreground_mask"], box)).max(-1) > 8
    changed = torch.from_numpy(diff.reshape(h // 16, 16, w // 16, 16).any((1, 3)).reshape(-1))
    return next(a for a in np.round(np.arange(1, 6, .05), 2) if not (changed & (localized_mask(box, (h, w), alpha=float(a)) == 0)).any())

alpha_tokens = _alpha_tokens()
alpha_tokens_wrong = 2.  # the lesson's default: enough for the pixels, not for this triplet's tokens

def ldpo_loss(e_tw, e_tl, e_rw, e_rl, M, beta, swap=True):
    dw, dl = e_tw - e_rw, e_tl - e_rl
    w_diff = (M * dw + (1 - M) * (dl if swap else dw)).mean(-1)
    l_diff = (M * dl + (1 - M) * (dw if swap else dl)).mean(-1)
    return -F.logsigmoid(-.5 * beta * (w_diff - l_diff)).mean()

def ldpo_loss_wrong(*args):
    "No swap outside M: plain Diffusion-DPO, which prefers the fused image everywhere."
    return ldpo_loss(*args, swap=False)
