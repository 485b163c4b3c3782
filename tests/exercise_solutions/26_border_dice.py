"Reference answer to nbs/26_border_dice.ipynb's exercise, and a typical mistake."
from dreamfuse_lit.dreamfuse.border_dice import border_mask, gradient_map

def border_dice(bg, fused, width, power=2):
    a, b = gradient_map(bg), gradient_map(fused)
    m = border_mask(*a.shape[-2:], width).float()
    return 2 * (a * b * m).sum((1, 2)) / ((a ** power * m).sum((1, 2)) + (b ** power * m).sum((1, 2)) + 1e-8)

def border_dice_wrong(bg, fused, width):
    "Sums the maps, not their squares, in the denominator."
    return border_dice(bg, fused, width, power=1)
