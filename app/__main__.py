"""`python -m app` (or `make app`): the FuseLIP demo on http://127.0.0.1:7860.

Environment: FUSELIP_APP_HOST (default 127.0.0.1), FUSELIP_APP_PORT or GRADIO_SERVER_PORT (default 7860),
FUSELIP_CHECKPOINTS (checkpoint folder, default ./checkpoints), FUSELIP_UNTRAINED=0 (no untrained stand-ins
for missing checkpoints), FUSELIP_CACHE (gallery-embedding cache, default ./cache/gallery),
FUSELIP_APP_THREADS (torch threads, default 1).

Start-up, for a fast cold start: torch + the package (and the benchmark examples the page shows) are imported
in one thread while Gradio is imported in the main thread; once the page is served, a background thread
loads the models and embeds the galleries (cached on disk after the first run). A request never waits for
more than what it needs: each model is loaded once, behind its own lock.
"""
from __future__ import annotations

import os
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


class Loader(threading.Thread):
    """Imports the package and builds the Demo (and its examples) while the main thread imports Gradio."""

    def __init__(self):
        super().__init__(name="load-package", daemon=True)
        self.demo = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            import torch
            from fuselip.demo import Demo, DemoConfig
            config = DemoConfig.from_env()
            torch.set_num_threads(config.threads)
            demo = Demo(config)
            demo.benchmark.load_all()
            self.demo = demo
        except BaseException as e:  # re-raised in the main thread
            self.error = e


def main() -> None:
    started = time.perf_counter()
    loader = Loader()
    loader.start()
    import gradio  # noqa: F401  (the slow import, overlapped with the loader)
    loader.join()
    if loader.error is not None:
        raise loader.error
    demo = loader.demo

    from app.ui import CSS, build
    blocks = build(demo)
    host = os.environ.get("FUSELIP_APP_HOST", DEFAULT_HOST)
    port = int(os.environ.get("FUSELIP_APP_PORT") or os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT)
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True, quiet=True,
                  prevent_thread_lock=True, footer_links=["api"], css=CSS)
    print(f"FuseLIP demo serving on http://{host}:{port} (cold start {time.perf_counter() - started:.1f} s)",
          flush=True)
    threading.Thread(target=demo.warm_up, name="warm-up", daemon=True).start()
    try:
        blocks.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        blocks.close()


if __name__ == "__main__":
    main()
