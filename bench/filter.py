"""Border Dice throughput on 1024x1024 pairs: batched torch `gradient_dice` against a per-image NumPy/SciPy version.

Both run in this process on the same pairs: a real photograph (matplotlib's Grace Hopper) resized to 1024x1024 as
the background, and as fused images the same picture shifted by 0-7 pixels, so the scores span aligned to clearly
moved. The reference is the straightforward loop a data script would write: scipy.ndimage.sobel (mode="nearest",
i.e. replicate padding) per image on the whole image, then the band mask, float32 like the torch run.
`gradient_dice` computes gradients on the band's strips only; a third line times torch on whole maps
(`gradient_map` + `border_mask`) to separate that saving from batching. Torch uses every core (or the GPU when asked).

    python bench/filter.py [--pairs 16] [--batch 8] [--repeats 3] [--device cpu]
"""
import argparse, os, time
import numpy as np
import torch
from PIL import Image
from matplotlib.cbook import get_sample_data
from scipy import ndimage
from dreamfuse_lit.dreamfuse.border_dice import LUMA, border_mask, gradient_dice, gradient_map

def make_pairs(n, side=1024):
    "`n` (background, fused) float32 pairs (n, 3, side, side) in [0, 1]: a photo and copies shifted by 0-7 px."
    with Image.open(get_sample_data("grace_hopper.jpg")) as im: photo = np.asarray(im.convert("RGB").resize((side + 16, side + 16), Image.BICUBIC))
    bg = photo[8:8 + side, 8:8 + side]
    shifts = [(k % 8, (k // 8) % 3) for k in range(n)]
    fused = np.stack([photo[8 + dy:8 + dy + side, 8 - dx:8 - dx + side] for dx, dy in shifts])
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div(255)
    return to(np.broadcast_to(bg, fused.shape)), to(fused)

def dice_numpy(bg, fused, width):
    "Border Dice of one (3, H, W) float32 pair with scipy's Sobel, written out."
    def grad(img):
        lum = np.tensordot(np.asarray(LUMA, np.float32), img, 1)
        return np.hypot(ndimage.sobel(lum, axis=1, mode="nearest"), ndimage.sobel(lum, axis=0, mode="nearest"))
    a, b = grad(bg), grad(fused)
    h, w = a.shape
    y, x = np.arange(h)[:, None], np.arange(w)[None]
    m = np.minimum(np.minimum(y, h - 1 - y), np.minimum(x, w - 1 - x)) < width
    return 2 * (a * b)[m].sum(dtype=np.float64) / ((a * a)[m].sum(dtype=np.float64) + (b * b)[m].sum(dtype=np.float64) + 1e-8)

def best_of(fn, repeats, warmup=True):
    "Fastest wall time of `repeats` calls of `fn` (after a warm-up call if `warmup`), and its last result."
    if warmup: fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return min(times), out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    bg, fused = make_pairs(a.pairs)
    dev = torch.device(a.device)
    bg_d, fused_d = bg.to(dev), fused.to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    def run_torch():
        out = torch.cat([gradient_dice(bg_d[i:i + a.batch], fused_d[i:i + a.batch], a.width) for i in range(0, a.pairs, a.batch)])
        sync(); return out.cpu().numpy()
    def run_full_maps():
        def dice(b, f):
            x, y, m = gradient_map(b), gradient_map(f), border_mask(1024, 1024, a.width, device=dev).float()
            return 2 * (x * y * m).sum((1, 2)) / ((x * x * m).sum((1, 2)) + (y * y * m).sum((1, 2)) + 1e-8)
        out = torch.cat([dice(bg_d[i:i + a.batch], fused_d[i:i + a.batch]) for i in range(0, a.pairs, a.batch)])
        sync(); return out.cpu().numpy()
    def run_numpy(): return np.array([dice_numpy(b, f, a.width) for b, f in zip(bg.numpy(), fused.numpy())])
    t_torch, d_torch = best_of(run_torch, a.repeats)
    t_full, d_full = best_of(run_full_maps, a.repeats)
    t_numpy, d_numpy = best_of(run_numpy, max(a.repeats - 1, 1), warmup=False)  # nothing to warm up; the slowest part
    print(f"pairs: {a.pairs} of 1024x1024, band {a.width} px, torch {torch.__version__} on {dev} "
          f"({torch.get_num_threads()} threads, batch {a.batch}), {os.cpu_count()} cores; best of {a.repeats} (numpy {max(a.repeats - 1, 1)})")
    diff = max(np.abs(d_torch - d_numpy).max(), np.abs(d_full - d_numpy).max())
    print(f"dice range: {d_numpy.min():.3f} .. {d_numpy.max():.3f}; max abs diff torch vs numpy: {diff:.2e}")
    print(f"torch gradient_dice (band strips): {a.pairs / t_torch:7.1f} pairs/s ({t_torch / a.pairs * 1e3:6.1f} ms/pair)")
    print(f"torch whole maps + mask:           {a.pairs / t_full:7.1f} pairs/s ({t_full / a.pairs * 1e3:6.1f} ms/pair)")
    print(f"numpy/scipy per image:             {a.pairs / t_numpy:7.1f} pairs/s ({t_numpy / a.pairs * 1e3:6.1f} ms/pair)")
    assert diff < 1e-4, "torch and numpy disagree"
    print(f"speedup_vs_numpy: {t_numpy / t_torch:.2f}")

if __name__ == "__main__": main()
