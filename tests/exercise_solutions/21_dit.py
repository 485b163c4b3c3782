"Reference answer to nbs/21_dit.ipynb's exercise, and a typical mistake."

def pack(latents, order=(0, 2, 4, 1, 3, 5)):
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(*order).reshape(b, h // 2 * w // 2, 4 * c)

def pack_wrong(latents):
    "Channels last within a token: (dy, dx, c) instead of (c, dy, dx)."
    return pack(latents, order=(0, 2, 4, 3, 5, 1))
