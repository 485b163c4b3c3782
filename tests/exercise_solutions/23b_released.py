"Reference answer to nbs/23b_released.ipynb's exercise, and a typical mistake."
import torch

def released_timesteps(n, generator=None, low=1):
    return torch.randint(low, low + 1000, (n,), generator=generator).float() / 1000

def released_timesteps_wrong(n, generator=None):
    "k from 0 to 999: draws the clean image's t = 0 and never t = 1."
    return released_timesteps(n, generator, low=0)
