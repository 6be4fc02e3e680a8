"""App latency: cold start of `python -m app`, and attention / retrieval requests through gradio_client.

Anchors, in the same run: the same fuselip.demo.Demo methods called in-process on the same inputs (same
torch thread count as the app), so `server ÷ in-process` shows what the HTTP server, the queue, uploads and
result files add; and a no-op request (/status) through the same server: the floor of any request.
Every request uses a distinct (image, text) input (no probe-cache hits).

Prints the cold start (target ≤ 15 s), p50/p90 per endpoint for the server and the anchor, and as its LAST
line `p50_ms=N`: the larger of the two server p50s (attention, retrieval), target ≤ 500 ms on the tiny models.

    .venv/bin/python benchmarks/app_latency.py [--requests 30] [--cold-starts 1]

A released model (fuselip.pretrained; docs/pretrained.md): `--released PATH_OR_NAME`, or `--released-random base`
(a FuseLIP-B-shaped folder in the release format with random weights, written to a temporary folder and deleted
afterwards: the timing of the real FuseLIP-B, none of its meaning). The server then shows it (FUSELIP_MODEL) and the
timed request is a fused query (image + instruction) through its attention tab: the 256-px image squashed, tokenized
by the official TiTok (every request has new pixels, so the tokenizer always runs), FuseLIP with attention kept, the
token maps. Anchors: the same Demo call in-process, and the bare fused embedding `model.encode(images, texts)`.
Target ≤ 1,000 ms; the LAST line is `p50_ms=N` of the server attention request.

    .venv/bin/python benchmarks/app_latency.py --released-random base [--requests 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
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


def start_server(port: int, log: Path, released: str = "") -> tuple[subprocess.Popen, float, str]:
    """Starts `python -m app`; returns (process, seconds until the page answers HTTP 200, url)."""
    env = dict(os.environ, FUSELIP_APP_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", FUSELIP_MODEL=released)
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


def time_interleaved(plan, inputs) -> tuple[dict[str, list[float]], float]:
    """Seconds per call of every (name, fn) in `plan` on every input, interleaved so that background load hits all of
    them alike; and the load average before."""
    timings = {name: [] for name, _ in plan}
    load_before = os.getloadavg()[0]
    for x in inputs:
        for name, fn in plan:
            t0 = time.perf_counter()
            fn(x)
            timings[name].append(time.perf_counter() - t0)
    return timings, load_before


def print_percentiles(timings: dict[str, list[float]], width: int) -> dict[str, float]:
    p50 = {}
    for name, times in timings.items():
        p50[name], p90 = percentiles(times)
        print(f"{name:>{width}}: p50 {p50[name]:7.1f} ms   p90 {p90:7.1f} ms")
    return p50


def percentiles(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=10, method="inclusive")
    return 1000 * statistics.median(times), 1000 * q[8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per endpoint")
    parser.add_argument("--cold-starts", type=int, default=1, help="extra cold starts before the timed server's")
    parser.add_argument("--released", default="", help="a released FuseLIP (folder or cached Hugging Face name): time "
                                                       "a fused query through it instead")
    parser.add_argument("--released-random", choices=("small", "base"), default="",
                        help="time a FuseLIP-S/B-shaped release with random weights (written to a temporary folder)")
    args = parser.parse_args()
    if args.released or args.released_random:
        return released_main(args)

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
            client.predict(handle_file(str(x[0])), x[2], gallery.get(x[3], "benchmark images"), 5, "", None,
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
        timings, load_before = time_interleaved(plan, inputs[:-1])
    finally:
        stop(process)

    print(f"{args.requests} distinct requests per endpoint, torch threads {config.threads}, "
          f"models: {', '.join(e.label for e in demo.registry.entries.values())}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"the timed requests (other jobs slow every figure alike)")
    p50 = print_percentiles(timings, 24)
    for kind in ("attention", "retrieval"):
        print(f"server overhead, {kind}: server p50 ÷ in-process p50 = "
              f"{p50['server ' + kind] / p50['in-process ' + kind]:.2f}")
    print(f"p50_ms={max(p50['server attention'], p50['server retrieval']):.0f}")


def distinct_image(image, i: int, row: int = 0):
    """The example image with pixel (row, 0) set from `i`: new pixels per request, so no cache holds its tokens."""
    image = image.copy()
    image[row, 0] = (i % 256, (i // 256) % 256, 7)
    return image


def released_main(args) -> None:
    """Time a fused query through a released model's attention tab (module docstring)."""
    from PIL import Image
    workdir = Path(tempfile.mkdtemp(prefix="fuselip-latency-"))
    try:
        source = args.released
        if args.released_random:
            from fuselip.pretrained import write_random_release
            t0 = time.perf_counter()
            source = str(write_random_release(workdir / f"random-{args.released_random}", args.released_random))
            print(f"wrote a random {args.released_random} release in {time.perf_counter() - t0:.1f} s", flush=True)

        import torch
        from gradio_client import Client, handle_file
        from fuselip.demo import Demo, DemoConfig
        config = DemoConfig.from_env()
        config.released = (source,)
        torch.set_num_threads(config.threads)
        demo = Demo(config)
        model = demo.fuselip_names()[0]  # the released one comes first
        examples = demo.benchmark.attention_examples()
        inputs = []  # (file for the server, array for in-process, text); every image distinct
        for i in range(args.requests + 1):
            e = examples[i % len(examples)]
            path = workdir / f"q{i}.png"
            Image.fromarray(distinct_image(e.image, i)).save(path)
            inputs.append((path, distinct_image(e.image, 10_000 + i), e.text))

        process, seconds, url = start_server(free_port(), workdir / "server.log", released=source)
        print(f"cold start of `python -m app` to serving: {seconds:.1f} s (the released model loads in the "
              f"background)", flush=True)
        try:
            client = Client(url, verbose=False, download_files=False)

            def server_attention(x):
                client.predict(model, handle_file(str(x[0])), x[2], "mean", "mean", None, api_name="/attention")

            def local_attention(x):
                demo.attention(model, x[1], x[2])

            released = demo.registry.get(model)

            def local_encode(x):  # the bare fused embedding, tokenizer included (new pixels again)
                released.encode(images=[distinct_image(x[1], next(fresh), row=1)], texts=[x[2]])

            fresh = iter(range(20_000, 30_000))

            t0 = time.perf_counter()
            for fn in (server_attention, local_attention, local_encode):  # loads the model on both sides
                fn(inputs[-1])
            client.predict(handle_file(str(inputs[-1][0])), inputs[-1][2], "benchmark images", 5,
                           "", None, api_name="/retrieve")  # waits for the server's background warm-up to finish
            print(f"warm-up (model loads, galleries of the tiny models) {time.perf_counter() - t0:.1f} s", flush=True)
            plan = (("server attention (released)", server_attention), ("in-process attention", local_attention),
                    ("in-process encode (fused)", local_encode))
            timings, load_before = time_interleaved(plan, inputs[:-1])
        finally:
            stop(process)
        print(f"{args.requests} distinct fused queries, torch threads {config.threads}, model: "
              f"{released.describe()}")
        print(f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} "
              f"after the timed requests (other jobs slow every figure alike)")
        p50 = print_percentiles(timings, 28)
        print(f"p50_ms={p50['server attention (released)']:.0f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
