"""Top-k search over a 100,000-item gallery: fuselip.retrieval.Index vs faiss IndexFlatIP.

Both get the same unit vectors (dim 256, fixed seed), the same queries and the same number of threads;
repetitions are interleaved (ours, faiss, faiss, ours, ...) so that background load hits both alike; each
workload is its own phase and every timed search follows an untimed identical one, so both libraries read
a cache-warm gallery (see the comment in main). `Index.search` uses faiss' own scan for one or two queries
and a torch matrix product for more (fuselip/retrieval.py), so the single-query row compares the same
kernel on two copies of the gallery, and the batch row compares the two kernels.
Two workloads: one query at a time (the app) and a batch of queries (evaluation, notebooks).
The last line is `ratio_vs_faiss=X.XX`: the WORST of the per-workload ratios (our median time ÷ faiss'),
so a large win on one workload cannot hide a loss on the other (lower is better).

    .venv/bin/python benchmarks/retrieval.py [--items 100000] [--dim 256] [--reps 15] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np
import torch

from fuselip.retrieval import Index


def median_ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64, help="queries per batched search")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="threads for BOTH libraries")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    gallery = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = rng.standard_normal((args.batch, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    ours = Index(gallery, normalised=True)
    theirs = faiss.IndexFlatIP(args.dim)
    theirs.add(gallery)

    # same answers first (exact search on both sides)
    got = ours.search(queries, args.k, normalised=True).indices.numpy()
    _, want = theirs.search(queries, args.k)
    agree = float((got == want).mean())

    workloads = {"single": queries[:1], f"batch{args.batch}": queries}
    times = {(lib, w): [] for lib in ("ours", "faiss") for w in workloads}
    for name, q in workloads.items():  # warm-up
        ours.search(q, args.k, normalised=True)
        theirs.search(q, args.k)
    searches = {"ours": lambda q: ours.search(q, args.k, normalised=True), "faiss": lambda q: theirs.search(q, args.k)}
    # Each library holds its own 100 MB copy of the gallery (ours: two, one per kernel), and the machine's L3
    # cache holds only some of them: a search is faster when its copy is cache-resident. So
    # each workload runs as its own phase (a batch phase would evict the single-query copies), every timed
    # search follows an untimed identical one (a warm gallery, as repeated app queries have), and the order
    # of the two libraries alternates every repetition.
    for name, q in workloads.items():
        for rep in range(args.reps):
            for lib in (("ours", "faiss") if rep % 2 == 0 else ("faiss", "ours")):
                searches[lib](q)
                t0 = time.perf_counter()
                searches[lib](q)
                times[(lib, name)].append(time.perf_counter() - t0)

    print(f"gallery {args.items} x {args.dim} float32, k={args.k}, threads={args.threads}, reps={args.reps}")
    print(f"top-{args.k} agreement with faiss: {agree:.4f}")
    ratios = []
    for name in workloads:
        a, b = median_ms(times[("ours", name)]), median_ms(times[("faiss", name)])
        ratios.append(a / b)
        print(f"{name:>8}: ours {a:8.2f} ms   faiss IndexFlatIP {b:8.2f} ms   ratio {a / b:.2f}")
    print(f"ratio_vs_faiss={max(ratios):.2f}")


if __name__ == "__main__":
    main()
