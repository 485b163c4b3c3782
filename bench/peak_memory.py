"Peak resident memory of a CPU benchmark process, measured from a point after its imports (Linux /proc)."

def status_mb(key: str) -> float:
    "A `/proc/self/status` field in MiB, e.g. VmRSS (now) or VmHWM (peak)."
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) / 1024

def reset_peak_rss() -> float:
    "Reset VmHWM to the current RSS and return that RSS (MiB): VmHWM(end) − the result is what the run added."
    # Writing "5" to /proc/self/clear_refs (Linux >= 4.0) resets VmHWM to the current RSS. Without it, VmHWM stays
    # max(import peak, run peak); the run peak dominates in these benchmarks by far.
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
    except OSError: pass
    return status_mb("VmRSS")
