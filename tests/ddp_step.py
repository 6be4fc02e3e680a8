"""One engine step (forward + backward, no optimiser step) on a fixed global batch; writes loss and gradients.

Run by tests/test_engine.py both in-process and as `torchrun --nproc_per_node 2 tests/ddp_step.py OUT`
(gloo, fp32): the two must agree to 1e-5.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import fuselip_helpers as H  # noqa: E402
from fuselip import engine  # noqa: E402


def one_step(out_dir: str) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    cfg = H.run_config(batch=8, precision="fp32")
    trainer = engine.Trainer(H.model(), cfg, H.pairs(20), out_dir=out_dir, progress=False)
    trainer.prepare()
    parts = trainer.backward(trainer.next_batch(), step=0)
    out = {f"loss.{k}": torch.tensor(v, dtype=torch.float64) for k, v in parts.items()}
    for name, param in trainer.model.named_parameters():
        if param.grad is not None:  # the frozen tokenizer has none
            out[f"grad.{name}"] = param.grad.detach().clone()
    return out


if __name__ == "__main__":
    result = one_step(sys.argv[1])
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        save_file(result, str(Path(sys.argv[1]) / "step.safetensors"))
