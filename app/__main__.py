"""`python -m app` (or `make app`): the FuseLIP demo on http://127.0.0.1:7860.

Environment: FUSELIP_APP_HOST (default 127.0.0.1), FUSELIP_APP_PORT or GRADIO_SERVER_PORT (default 7860),
FUSELIP_CHECKPOINTS (checkpoint folder, default ./checkpoints), FUSELIP_UNTRAINED=0 (no untrained stand-ins
for missing checkpoints), FUSELIP_CACHE (gallery-embedding cache, default ./cache/gallery),
FUSELIP_APP_THREADS (torch threads, default 1), FUSELIP_MODEL (released models for the tokens and attention tabs,
comma-separated folders or Hugging Face names, e.g. chs20/FuseLIP-B-CC3M-MM; see docs/pretrained.md),
FUSELIP_DOWNLOAD=1 (fetch a FUSELIP_MODEL name missing from the Hugging Face cache; never done otherwise),
FUSELIP_GALLERY_ROOT (a folder whose subfolders the retrieval tab may search on the server; unset: none, visitors
upload their images instead).

Start-up, for a fast cold start: only what the page needs is done before serving (torch + the package, the
benchmark examples, Gradio, the layout); the models are loaded and the galleries embedded afterwards, in a
background thread (gallery embeddings are cached on disk after the first run). A request never waits for
more than what it needs: each model is loaded once, behind its own lock. Imports run one after the other:
importing torch and Gradio in two threads at once was slower on 2 cores (the two fight over the GIL).
"""
from __future__ import annotations

import os
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def main() -> None:
    started = time.perf_counter()
    import torch
    from fuselip.demo import Demo, DemoConfig
    config = DemoConfig.from_env()
    torch.set_num_threads(config.threads)
    demo = Demo(config)
    demo.benchmark.load_all()
    loaded = time.perf_counter()

    from app.ui import CSS, build
    blocks = build(demo)
    host = os.environ.get("FUSELIP_APP_HOST", DEFAULT_HOST)
    port = int(os.environ.get("FUSELIP_APP_PORT") or os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT)
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True, quiet=True,
                  prevent_thread_lock=True, footer_links=["api"], css=CSS)
    now = time.perf_counter()
    print(f"FuseLIP demo serving on http://{host}:{port} (cold start {now - started:.1f} s: package and examples "
          f"{loaded - started:.1f} s, Gradio and the page {now - loaded:.1f} s; models load in the background)",
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
