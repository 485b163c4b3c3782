"Reference answer to nbs/22_conditions.ipynb's exercise, and a typical mistake."
import math

def generation_size(width, height, max_pixels=1024*1024, root=.5):
    scale = min(1., (max_pixels / (width * height)) ** root)
    return math.floor(width * scale) // 16 * 16, math.floor(height * scale) // 16 * 16

def generation_size_wrong(width, height, max_pixels=1024*1024):
    "Scales the sides by the area ratio itself, not by its square root."
    return generation_size(width, height, max_pixels, root=1.)
