"""App latency: cold start of `python -m app`, and attention / retrieval requests through gradio_client.

Anchors, in the same run: the same fuselip.demo.Demo methods called in-process on the same inputs (same
torch thread count as the app), so `server ÷ in-process` shows what the HTTP server, the queue, uploads and
result files add; and a no-op request (/status) through the same server: the floor of any request.
Every request uses a distinct (image, text) input (no probe-cache hits).

Prints the cold start (target ≤ 15 s), p50/p90 per endpoint for the server and the anchor, and as its LAST
line `p50_ms=N`: the larger of the two server p50s (attention, retrieval), target ≤ 500 ms on the tiny models.

    .venv/bin/python benchmarks/app_latency.py [--requests 30] [--cold-starts 1]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = ["", " please", " now", " here", " again", " quickly"]  # make texts distinct


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path) -> tuple[subprocess.Popen, float, str]:
    """Starts `python -m app`; returns (process, seconds until the page answers HTTP 200, url)."""
    env = dict(os.environ, FUSELIP_APP_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return process, time.perf_counter() - started, url
        except OSError:
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentiles(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=10, method="inclusive")
    return 1000 * statistics.median(times), 1000 * q[8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per endpoint")
    parser.add_argument("--cold-starts", type=int, default=1, help="extra cold starts before the timed server's")
    args = parser.parse_args()

    from PIL import Image

    workdir = Path(tempfile.mkdtemp(prefix="fuselip-latency-"))
    cold = []  # the server used below is one more cold start
    for i in range(args.cold_starts):
        process, seconds, _ = start_server(free_port(), workdir / f"cold{i}.log")
        cold.append(seconds)
        stop(process)

    import torch
    from gradio_client import Client, handle_file
    from fuselip.demo import Demo, DemoConfig

    config = DemoConfig.from_env()
    torch.set_num_threads(config.threads)
    demo = Demo(config)
    examples = demo.benchmark.examples(config.retrieval_tasks)
    inputs = []  # distinct (image file, image array, text, task)
    for i in range(args.requests + 1):
        e = examples[i % len(examples)]
        path = workdir / f"q{i % len(examples)}.png"
        Image.fromarray(e.image).save(path)
        inputs.append((path, e.image, e.text + TEXT_SUFFIXES[(i // len(examples)) % len(TEXT_SUFFIXES)], e.task))
    model = demo.fuselip_names()[0]

    process, seconds, url = start_server(free_port(), workdir / "server.log")
    cold.append(seconds)
    print(f"cold start of `python -m app` to serving: {', '.join(f'{s:.1f} s' for s in cold)} "
          f"(median {statistics.median(cold):.1f} s; target ≤ 15 s)", flush=True)
    try:
        # the response is complete when the server answers; result pictures are fetched by URL afterwards
        # (a browser loads them lazily, in parallel), so they are not downloaded here
        client = Client(url, verbose=False, download_files=False)
        gallery = {"vqa": "benchmark answers (texts)"}
        which = {"vqa": "answers"}

        def server_attention(x):
            client.predict(model, handle_file(str(x[0])), x[2], "mean", "mean", None, api_name="/attention")

        def server_retrieve(x):
            client.predict(handle_file(str(x[0])), x[2], gallery.get(x[3], "benchmark images"), 5, "",
                           api_name="/retrieve")

        def server_status(x):  # a handler that does nothing: the floor of one request through the server
            client.predict(api_name="/status")

        def local_attention(x):
            demo.attention(model, x[1], x[2])

        def local_retrieve(x):
            demo.retrieve(x[1], x[2], which.get(x[3], "images"), 5)

        # warm-up: models loaded, galleries embedded (cached on disk after the first run), nothing timed
        for fn in (server_attention, server_retrieve, local_attention, local_retrieve):
            fn(inputs[-1])
        plan = (("server attention", server_attention), ("in-process attention", local_attention),
                ("server retrieval", server_retrieve), ("in-process retrieval", local_retrieve),
                ("server no-op (/status)", server_status))
        timings = {name: [] for name, _ in plan}
        load_before = os.getloadavg()[0]
        for x in inputs[:-1]:  # interleaved, so that background load hits all of them alike
            for name, fn in plan:
                t0 = time.perf_counter()
                fn(x)
                timings[name].append(time.perf_counter() - t0)
    finally:
        stop(process)

    print(f"{args.requests} distinct requests per endpoint, torch threads {config.threads}, "
          f"models: {', '.join(e.label for e in demo.registry.entries.values())}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"the timed requests (other jobs slow every figure alike)")
    p50 = {}
    for name, times in timings.items():
        p50[name], p90 = percentiles(times)
        print(f"{name:>24}: p50 {p50[name]:7.1f} ms   p90 {p90:7.1f} ms")
    for kind in ("attention", "retrieval"):
        print(f"server overhead, {kind}: server p50 ÷ in-process p50 = "
              f"{p50['server ' + kind] / p50['in-process ' + kind]:.2f}")
    print(f"p50_ms={max(p50['server attention'], p50['server retrieval']):.0f}")


if __name__ == "__main__":
    main()
