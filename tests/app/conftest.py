"""One real app server (`python -m app` as a subprocess on a free port) shared by every app test.

The server loads whatever `python -m app` loads by default (the shipped checkpoints in ./checkpoints, untrained
stand-ins for missing ones); FUSELIP_CHECKPOINTS / FUSELIP_CACHE in the environment are passed through.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120  # seconds until the page must be served (cold start is measured in benchmarks/)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"the app exited with code {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not serve {server.url} within {timeout} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    env = dict(os.environ, FUSELIP_APP_HOST="127.0.0.1", FUSELIP_APP_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}/", process, log)
    try:
        wait_until_serving(server, START_TIMEOUT)
        yield server
    finally:
        process.terminate()  # by PID, only the process this fixture started
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def benchmark():
    """The same benchmark items the app uses (same config, same seed)."""
    from fuselip.demo import Benchmark, DemoConfig
    return Benchmark(DemoConfig.from_env())


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """Input files, good and bad, as a user could upload them."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    paths = {}
    paths["not_image"] = d / "notes.txt"
    paths["not_image"].write_text("this is not an image\n" * 10)
    big = np.zeros((4000, 6000, 3), np.uint8)
    big[:, :3000] = (200, 30, 30)
    big[1000:3000, 3500:5500] = (30, 30, 200)
    paths["huge"] = d / "huge_6000x4000.png"
    Image.fromarray(big).save(paths["huge"], compress_level=1)
    rgba = rng.integers(0, 256, (80, 80, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(np.arange(80)[None, :] < 40, 0, 255)
    paths["rgba"] = d / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    paths["gray"] = d / "gray.png"
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(paths["gray"])
    paths["one_pixel"] = d / "one_pixel.png"
    Image.fromarray(np.array([[[10, 200, 30]]], np.uint8)).save(paths["one_pixel"])
    return paths
