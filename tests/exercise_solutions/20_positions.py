"Reference answers to nbs/20_positions.ipynb's exercise, and a typical mistake."
import torch

def box_affine(h, w, src_box, dst_box, patch=16, centre=.5):
    (sx0, sy0, sx1, sy1), (dx0, dy0, dx1, dy1) = src_box, dst_box
    r, c = torch.meshgrid(torch.arange(h) + centre, torch.arange(w) + centre, indexing="ij")
    x = dx0 + (c * patch - sx0) * (dx1 - dx0) / (sx1 - sx0)
    y = dy0 + (r * patch - sy0) * (dy1 - dy0) / (sy1 - sy0)
    return torch.stack([torch.zeros_like(x), y / patch - centre, x / patch - centre], -1).reshape(-1, 3)

def box_affine_wrong(h, w, src_box, dst_box, patch=16):
    "Maps token corners instead of centres."
    return box_affine(h, w, src_box, dst_box, patch, centre=0.)
