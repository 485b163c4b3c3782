"Reference answer to nbs/25_dataset.ipynb's exercise, and a typical mistake."
import math

def bucket(width, height, scale):
    a = width / height
    ws, hs = ({max(16, f(v / 16) * 16) for f in (math.floor, math.ceil)} for v in (scale * a ** .5, scale / a ** .5))
    return min(sorted((w, h) for w in ws for h in hs), key=lambda s: (abs(math.log(s[0] / s[1] / a)), abs(math.log(s[0] * s[1] / scale ** 2))))

def bucket_wrong(width, height, scale):
    "Rounds each ideal side to its nearest multiple of 16, without comparing the candidates' aspects."
    a = width / height
    return tuple(max(16, round(v / 16) * 16) for v in (scale * a ** .5, scale / a ** .5))
