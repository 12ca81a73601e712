"""How much memory capturing every layer of ResNet-18 at 224x224 for one sample costs.

Target (issue): at most 1.1x the captured data itself. "Captured data" is every
array the resulting ProbeSnapshot holds (feature maps, their mosaics, pooling
inputs and argmax, histograms, samples, filters): that is what crosses to the
GUI. Anything above it is waste: tensors the probe forgot to drop, an autograd
graph, temporaries kept alive.

Measured two ways after one warm-up pass (so torch's one-off allocations are in
the baseline), once the snapshot has been read (its records built, as where it arrives):
- RSS delta (psutil), after gc and malloc_trim so freed heap pages go back;
- tracemalloc's traced bytes (numpy registers its buffers with it), which
  isolates what Python/numpy still hold from allocator noise.

Run:  .venv/bin/python bench/probe_memory.py [--size 224] [--max-channels 512] [--repeat 3]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np
import psutil
import torch
import torch.nn as nn

from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest


def resnet18_like(num_classes: int = 1000) -> nn.Module:
    """Fallback when the zoo lacks resnet18: torchvision's layout, built here."""

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(y)) + idt)

    stages, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        stages.append(nn.Sequential(Basic(cin, cout, stride), Basic(cout, cout, 1)))
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2, 1), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, num_classes))


def build(size: int) -> tuple[nn.Module, str]:
    try:
        from visualizer.core.architectures import build_model
        return build_model("resnet18", in_channels=3, num_classes=1000, input_size=size), "zoo resnet18"
    except Exception as e:  # noqa: BLE001 - the zoo may not have it (yet)
        return resnet18_like(), f"local ResNet-18 ({type(e).__name__})"


def snapshot_arrays(obj, seen=None):
    """Every numpy array reachable through the snapshot's dataclasses and tuples."""
    seen = set() if seen is None else seen
    if isinstance(obj, np.ndarray):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from snapshot_arrays(o, seen)
    elif hasattr(obj, "__dataclass_fields__"):
        for f in obj.__dataclass_fields__:
            yield from snapshot_arrays(getattr(obj, f), seen)


def trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def measure(size: int, max_channels: int) -> float:
    """One measured capture in this process; returns RSS delta / captured bytes."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    model, source = build(size)
    bundle = ModelBundle(model=model, input_shape=(3, size, size),
                         class_names=tuple(str(i) for i in range(1000)))
    insp = Inspector(bundle)
    request = CaptureRequest(layers=("*",), max_channels=max_channels)
    image = np.random.default_rng(0).random((3, size, size), dtype=np.float32)
    proc = psutil.Process()
    print(f"{source}: {len(insp.info.layers)} layers, {insp.info.total_params / 1e6:.1f} M parameters, "
          f"input 3x{size}x{size}, max_channels={max_channels}")
    # Warm-up with nothing selected: torch's one-off allocations go into the baseline,
    # but no snapshot-sized block is freed there for the measured run to reuse unseen.
    insp.probe(CaptureRequest(layers=()), image)
    trim()
    tracemalloc.start()
    rss0, traced0 = proc.memory_info().rss, tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    snap = insp.probe(request, image)
    dt = time.perf_counter() - t
    # Read, as the window's reader thread reads a snapshot on arrival: the records are built, and
    # what was needed only to build them (the activations' inputs) is dropped.
    print(f"read: {len(snap.layers)} layers, {len(snap.activations)} activations")
    trim()
    rss1 = proc.memory_info().rss
    traced1, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = list(snapshot_arrays(snap))
    data = sum(a.nbytes for a in arrays)
    maps = sum(c.maps.nbytes for c in snap.layers if c.maps is not None)
    mosaics = sum(c.mosaic.image.nbytes for c in snap.layers if c.mosaic is not None)
    pools = sum(c.pool.input_maps.nbytes + (0 if c.pool.argmax is None else c.pool.argmax.nbytes)
                for c in snap.layers if c.pool is not None)
    rss_ratio = (rss1 - rss0) / data
    mb = 2 ** 20
    print(f"probe pass + reduction {dt * 1e3:.0f} ms; captured {data / mb:.1f} MB in {len(arrays)} arrays "
          f"(maps {maps / mb:.1f}, their mosaics {mosaics / mb:.1f}, pooling {pools / mb:.1f}); "
          f"RSS +{(rss1 - rss0) / mb:.1f} MB -> ratio {rss_ratio:.3f}; "
          f"tracemalloc +{(traced1 - traced0) / mb:.1f} MB -> ratio {(traced1 - traced0) / data:.3f} "
          f"(transient peak +{(traced_peak - traced0) / mb:.1f} MB)")
    insp.close()
    return rss_ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--max-channels", type=int, default=512, help="512 = every channel of ResNet-18")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes, so no run reuses another's pages")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(f"RATIO {measure(args.size, args.max_channels):.6f}")
        return
    import subprocess
    ratios = []
    for _ in range(args.repeat):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--size", str(args.size),
                            "--max-channels", str(args.max_channels)], capture_output=True, text=True)
        print(r.stdout.rsplit("RATIO", 1)[0].rstrip())
        if r.returncode:
            print(r.stderr)
        ratios += [float(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("RATIO")]
    if ratios:
        print(f"RSS growth / captured bytes over {len(ratios)} runs: best {min(ratios):.3f}, "
              f"worst {max(ratios):.3f} (target <= 1.1: {'met' if max(ratios) <= 1.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
