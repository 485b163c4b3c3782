"""End-to-end throughput of the border-Dice filter: PNGs decoded and scored, in pairs per second, one process against two.

`bench/filter.py` times the Dice arithmetic on tensors already in memory. A filtering run over a data set does more per
pair: it reads the manifest, checks every row's four images (headers, sizes, the mask's box), decodes the background
and the fused image (`filter_manifest` decodes all four, for the judge), computes the gradient Dice on the band and
appends each result to `results.jsonl` with an fsync. This script times that whole path, without a judge, on triplets
it writes once to a temporary folder:
- `photo` (default): `--pairs` triplets of `--side`^2 pixels cut from a real photograph (matplotlib's Grace Hopper), the
  fused image the same picture shifted by 0-7 pixels, so scores span aligned to clearly moved; the band is the
  supplement's fixed 100 pixels;
- `demo`: the 36 shipped demo triplets (128-192 pixels, where the fixed band covers every pixel).

Runs, each on the same triplets, each in processes started (spawn, one torch thread each) and warmed up before timing:
- `decode + dice`: the core loop alone, a row's background and fused PNG decoded and scored (`load_row_images`,
  `band_width`, `gradient_dice`);
- `filter_manifest`: the library's filter, in one process with `workers` 1 and 2 (its threads: PNG decoding and torch
  release the GIL for part of the work);
- each of the two, sharded over `--processes` processes. `filter_manifest` has no sharding of its own (its parallelism
  is threads, for judges that wait on a server), so the manifest is split here into interleaved shards (rows i, i+P,
  ...), each filtered by its own process into its own folder, as one would split a large set over machines.
The time of a sharded run is the wall time until the slowest shard is done. Beside each measured speedup stands the
ideal one, which needs no FLOP count because every pair costs the same work: the pairs over the largest shard, scaled
down when there are more processes than cores (`os.cpu_count()`, which counts cores that other jobs may be using: the
load average before the runs is recorded with the results).

    python bench/filter_throughput.py [--source photo|demo] [--pairs 32] [--side 1024] [--processes 2] [--repeats 2]

Prints a table and writes `bench/results/filter_throughput-<cpu>-<date>.json` and `.md` (`--out` for another folder).
"""
import argparse, datetime, json, multiprocessing as mp, os, platform, re, shutil, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_photo_triplets(folder:Path, n:int, side:int) -> Path:
    "`n` triplets of `side`^2 pixels from a photograph (fused = background shifted by 0-7 px) and their manifest."
    import numpy as np
    from PIL import Image, ImageDraw
    from matplotlib.cbook import get_sample_data
    from dreamfuse_lit.world.manifest import write_manifest
    with Image.open(get_sample_data("grace_hopper.jpg")) as im:
        photo = np.asarray(im.convert("RGB").resize((side + 16, side + 16), Image.BICUBIC))
    background = photo[8:8 + side, 8:8 + side]
    fg = Image.fromarray(photo[side // 4:side // 2, side // 4:side // 2])
    mask = Image.new("L", fg.size); ImageDraw.Draw(mask).ellipse((4, 4, fg.width - 5, fg.height - 5), fill=255)
    fg.save(folder / "foreground.png"); mask.save(folder / "mask.png"); Image.fromarray(background).save(folder / "background.png")
    rows = []
    for k in range(n):
        dx, dy = k % 8, (k // 8) % 3
        Image.fromarray(np.ascontiguousarray(photo[8 + dy:8 + dy + side, 8 - dx:8 - dx + side])).save(folder / f"fused-{k:04d}.png")
        rows.append(dict(id=f"pair-{k:04d}", foreground="foreground.png", foreground_mask="mask.png", background="background.png",
                         fused=f"fused-{k:04d}.png", box=[side // 3, side // 3, 2 * side // 3, 2 * side // 3], prompt="",
                         category="Object", scene="indoor", complexity="simple", source="bench"))
    return write_manifest(rows, folder / "manifest.jsonl")


def shard(manifest:Path, parts:int) -> list:
    "Interleaved shards of a manifest (rows i, i+parts, ...) beside it, with the images' paths unchanged."
    lines = manifest.read_text().splitlines(keepends=True)
    paths = []
    for p in range(parts):
        path = manifest.with_name(f"{manifest.stem}-shard{p}of{parts}.jsonl")
        path.write_text("".join(lines[p::parts])); paths.append(path)
    return paths


def _start(_=None):
    "Worker setup: one torch thread, the library imported (so that timing starts after the imports)."
    import torch
    torch.set_num_threads(1)
    import dreamfuse_lit.dreamfuse.filtering  # noqa: F401
    return os.getpid()


def decode_and_dice(manifest:str) -> int:
    "The core loop: each row's background and fused PNG decoded and scored on the fixed band. Returns the pairs done."
    from dreamfuse_lit.world.manifest import read_manifest, load_row_images
    from dreamfuse_lit.dreamfuse.border_dice import band_width, gradient_dice, image_tensor
    n = 0
    for row in read_manifest(manifest):
        ims = load_row_images(row, manifest, fields=("background", "fused"))
        bg, fused = image_tensor(ims["background"]), image_tensor(ims["fused"])
        gradient_dice(bg, fused, band_width(*bg.shape[-2:])).item(); n += 1
    return n


def filter_run(job:tuple) -> int:
    "`filter_manifest` without a judge over `manifest` into a fresh `out` folder with `workers` threads. Returns the rows."
    manifest, out, workers = job
    from dreamfuse_lit.dreamfuse.filtering import filter_manifest
    s = filter_manifest(manifest, out, workers=workers, progress=False)
    assert s["new"] == s["rows"] and s["errors"] == 0, s
    return s["rows"]


def timed(pool, fn, jobs) -> float:
    "Wall seconds of `fn` over `jobs` in `pool`, one job per process at once."
    t0 = time.perf_counter()
    pool.map(fn, jobs, chunksize=1)
    return time.perf_counter() - t0


def cpu_name() -> str:
    try: return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): return platform.processor() or "cpu"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("photo", "demo"), default="photo")
    ap.add_argument("--pairs", type=int, default=32, help="photo triplets to write (demo: always the 36 shipped)")
    ap.add_argument("--side", type=int, default=1024, help="photo triplets' side in pixels")
    ap.add_argument("--processes", type=int, default=2, help="processes of the sharded runs")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats of each run; the fastest counts")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="filter_throughput_"))
    try:
        if a.source == "photo": manifest = write_photo_triplets(work, a.pairs, a.side)
        else:
            from dreamfuse_lit.core.files import data_path
            manifest = Path(shutil.copytree(data_path("demo"), work / "demo")) / "manifest.jsonl"
        n, P = len(manifest.read_text().splitlines()), a.processes
        shards = [str(p) for p in shard(manifest, P)]
        shard_sizes = [len(Path(s).read_text().splitlines()) for s in shards]
        largest = max(shard_sizes)
        cores = os.cpu_count() or 1
        ideal = round(n / largest * min(1., cores / P), 2)
        load = os.getloadavg()[0]
        ctx, runs, k = mp.get_context("spawn"), [], [0]
        def fresh(): k[0] += 1; return str(work / f"out-{k[0]}")
        one, many = ctx.Pool(1, initializer=_start), ctx.Pool(P, initializer=_start)
        try:
            one.map(_start, [0]); many.map(_start, range(P))  # processes up, imports done
            one.map(decode_and_dice, [str(manifest)]); many.map(decode_and_dice, shards)  # warm-up: kernels, file cache
            plan = [("decode + dice", 1, 1, one, decode_and_dice, lambda: [str(manifest)]),
                    ("decode + dice", P, 1, many, decode_and_dice, lambda: shards),
                    ("filter_manifest", 1, 1, one, filter_run, lambda: [(str(manifest), fresh(), 1)]),
                    ("filter_manifest", 1, 2, one, filter_run, lambda: [(str(manifest), fresh(), 2)]),
                    ("filter_manifest", P, 1, many, filter_run, lambda: [(s, fresh(), 1) for s in shards])]
            for name, procs, threads, pool, fn, jobs in plan:
                best = min(timed(pool, fn, jobs()) for _ in range(a.repeats))
                runs.append(dict(run=name, processes=procs, threads=threads, seconds=round(best, 3), pairs_per_s=round(n / best, 2)))
        finally:
            for pool in (one, many): pool.close(); pool.join()
        for r in runs:
            base = next(b for b in runs if b["run"] == r["run"] and b["processes"] == 1 and b["threads"] == 1)
            r["speedup"] = round(base["seconds"] / r["seconds"], 2)
            r["ideal"] = 1.0 if (r["processes"], r["threads"]) == (1, 1) else ideal if r["processes"] > 1 else round(min(r["threads"], cores) * 1., 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import torch
    side = f"{a.side}x{a.side}" if a.source == "photo" else "128-192 px"
    res = dict(bench="filter_throughput", cpu=cpu_name(), cores=cores, load_average_1min=round(load, 2), torch=torch.__version__,
               python=platform.python_version(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               source=a.source, pairs=n, image=side, band="fixed 100 px (band_width)", processes=P, repeats=a.repeats,
               shard_sizes=shard_sizes, runs=runs)
    head = (f"**border-Dice filter throughput**: {n} {a.source} pairs of {side}, fixed 100-px band, {res['cpu']}, {cores} cores "
            f"(1-min load {res['load_average_1min']} before the runs), torch {res['torch']}, best of {a.repeats}\n\n")
    table = head + "| run | processes | threads | s | pairs/s | speedup | ideal |\n|---|---:|---:|---:|---:|---:|---:|\n" + "".join(
        f"| {r['run']} | {r['processes']} | {r['threads']} | {r['seconds']:.2f} | {r['pairs_per_s']:.1f} | {r['speedup']:.2f} | {r['ideal']:.2f} |\n" for r in runs)
    table += ("\nideal: the pairs over the largest shard, times min(1, cores / processes); for threads, min(threads, cores). "
              "The measured speedup falls short of it by whatever the processes share: cores busy with other jobs, memory "
              "bandwidth, the disk (one fsync per row in filter_manifest).\n")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = f"filter_throughput-{re.sub(r'[^A-Za-z0-9]+', '-', res['cpu']).strip('-')}-{datetime.date.today().isoformat()}"
    for path, text in ((out / f"{stem}.json", json.dumps(res, indent=1)), (out / f"{stem}.md", table)):
        tmp = path.with_suffix(path.suffix + ".tmp"); tmp.write_text(text); os.replace(tmp, path)
    print(table + f"\nresults: {out / stem}.json, .md")
    return res


if __name__ == "__main__": main()
