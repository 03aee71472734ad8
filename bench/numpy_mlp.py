#!/usr/bin/env python3
"""numpy float32 baseline for bench/train-fast.ts: forward + backward + Adam of a dense ReLU MLP with
softmax cross-entropy (no quantizers), batch-major. Prints one JSON line: {"samples_per_s", "samples_per_cpu_s", "step_ms", ...}.
Usage: numpy_mlp.py [--sizes 16,64,32,32,5] [--batch 32768] [--steps 10] [--warmup 2]"""
import argparse, json, sys, time

try:
    import numpy as np
except ImportError:
    print(json.dumps({"samples_per_s": None, "error": "numpy not installed"}))
    sys.exit(0)

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="16,64,32,32,5")
p.add_argument("--batch", type=int, default=32768)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
a = p.parse_args()
sizes = [int(s) for s in a.sizes.split(",")]
B = a.batch
rng = np.random.default_rng(1)
f32 = np.float32
Ws = [(rng.uniform(-1, 1, (k, n)) * np.sqrt(6 / (k + n))).astype(f32) for k, n in zip(sizes[:-1], sizes[1:])]
bs = [np.zeros(n, f32) for n in sizes[1:]]
params = Ws + bs
m = [np.zeros_like(q) for q in params]
v = [np.zeros_like(q) for q in params]
x = rng.uniform(-2, 2, (B, sizes[0])).astype(f32)
labels = rng.integers(0, sizes[-1], B)
y = np.zeros((B, sizes[-1]), f32)
y[np.arange(B), labels] = 1
lr, b1, b2, eps = f32(1e-3), f32(0.9), f32(0.999), f32(1e-7)
t = 0


def step():
    global t
    L = len(Ws)
    hs = [x]
    for l in range(L):
        z = hs[-1] @ Ws[l] + bs[l]
        hs.append(np.maximum(z, 0) if l < L - 1 else z)
    z = hs[-1]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) - (z * y).sum(axis=1)))
    d = (e / s - y) * f32(1 / B)
    gW, gb = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        gW[l] = hs[l].T @ d
        gb[l] = d.sum(axis=0)
        if l > 0:
            d = (d @ Ws[l].T) * (hs[l] > 0)
    t += 1
    c1, c2 = f32(1 - b1 ** t), f32(1 - b2 ** t)
    for j, g in enumerate(gW + gb):
        m[j] *= b1; m[j] += (1 - b1) * g
        v[j] *= b2; v[j] += (1 - b2) * (g * g)
        params[j] -= lr * (m[j] / c1) / (np.sqrt(v[j] / c2) + eps)
    return loss


for _ in range(a.warmup):
    step()
times = []
c0 = time.process_time()  # CPU time of all threads (BLAS included)
for _ in range(a.steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
cpu = (time.process_time() - c0) / a.steps
times.sort()
med = times[len(times) // 2]
print(json.dumps({"samples_per_s": B / med, "samples_per_cpu_s": B / cpu, "step_ms": med * 1000, "batch": B, "numpy": np.__version__}))
