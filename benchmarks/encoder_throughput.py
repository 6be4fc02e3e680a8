"""Encoder forward+backward throughput: FuseLIP's encoder vs open_clip's TextTransformer (the class the reference
FuseLIP builds its encoder from), same width / layers / heads / vocabulary / context, no causal mask.

    python benchmarks/encoder_throughput.py [--preset tiny] [--batch 128] [--reps 5] [--threads N]

Both models get the SAME token batch (image tokens + [sot, text, eot], padded to the context length as the
reference pipeline does), run under the same bf16 autocast, the same thread count, interleaved rep by rep; a
rep is forward + backward of the pooled embeddings (training mode). The anchor is open_clip with
`no_causal_mask=True` and no padding mask (`attn_mask=None`: it does strictly less work than a masked encoder).
Printed: samples/s of both (median over reps), our MFU (achieved FLOP/s of our trimmed forward+backward ÷ the
bf16 matmul peak measured in this run), the same comparison with open_clip fed the batch already trimmed to its
longest sequence (kernel efficiency alone, without our trimming), our model forced onto PyTorch's SDPA kernel
(`ours_sdpa_kernel`: why bf16 on CPU uses the explicit attention), and last `ratio_vs_open_clip=X.XX`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from open_clip.transformer import TextTransformer  # noqa: E402

from fuselip import vocab  # noqa: E402
from fuselip.config import load_preset  # noqa: E402
from fuselip.model import Block, FuseLIP  # noqa: E402
from fuselip.tokenizers import build_tokenizer  # noqa: E402


def token_batch(batch: int, n_image: int, codebook: int, context: int, seed: int = 0) -> torch.Tensor:
    """Sequences shaped like the training data: N image tokens, then [sot, 1-20 text tokens, eot], padded."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        codes = torch.randint(0, codebook, (n_image,), generator=g).tolist()
        text = torch.randint(1, 49000, (int(torch.randint(1, 21, (1,), generator=g)),), generator=g).tolist()
        rows.append(vocab.build_sequence(codes, text, context))
    ids = torch.zeros(batch, context, dtype=torch.long)  # (B, C): padded to the context, like the reference
    padded = vocab.pad_sequences(rows)
    ids[:, :padded.shape[1]] = padded
    return ids


def matmul_peak(seconds: float = 1.0, n: int = 2048) -> float:
    """bf16 matmul FLOP/s on this machine, now (best of repeated n x n x n products)."""
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


def our_flops(model: FuseLIP, ids: torch.Tensor) -> float:
    """Forward+backward FLOPs of our encoder on the trimmed batch (3 x forward; matmuls and attention only)."""
    ids = model.trim(ids)
    B, T = ids.shape
    D, L = model.config.width, model.config.layers
    hidden = int(D * model.config.mlp_ratio)
    per_token = 2 * (3 * D * D + D * D + 2 * D * hidden)  # qkv, proj, fc, fc_out
    attention = 2 * 2 * T * T * D                         # q k^T and weights v, per sequence and layer
    return 3 * L * (B * T * per_token + B * attention)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = load_preset("fuselip", args.preset)
    enc, tok_cfg = cfg.encoder, cfg.tokenizer
    torch.manual_seed(0)
    with torch.device("meta"):  # the tokenizer's weights play no part here; its shape gives N and the codebook
        n_image = build_tokenizer(tok_cfg).num_tokens
    vocab_size = vocab.joint_vocab_size(tok_cfg.codebook_size)

    class _ShapeOnly(torch.nn.Module):  # FuseLIP needs a tokenizer module; a stub with the right codebook
        codebook_size = tok_cfg.codebook_size
        config = tok_cfg

    ours = FuseLIP(enc, _ShapeOnly()).train()
    theirs = TextTransformer(context_length=enc.context_length, vocab_size=vocab_size, width=enc.width,
                             heads=enc.heads, layers=enc.layers, mlp_ratio=enc.mlp_ratio, output_dim=None,
                             no_causal_mask=True, pool_type="eos", eos_id=vocab.EOT).train()
    ids = token_batch(args.batch, n_image, tok_cfg.codebook_size, enc.context_length)
    trimmed = ours.trim(ids)

    def run_ours():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            embedding, _, _ = ours._masked_side(ids, None)
        embedding.float().sum().backward()

    def run_theirs(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            embedding = theirs(batch)
        embedding.float().sum().backward()

    def run_ours_sdpa():  # our model with PyTorch's SDPA kernel instead of the explicit bf16 CPU attention
        Block.explicit_cpu_bf16 = False
        try:
            run_ours()
        finally:
            Block.explicit_cpu_bf16 = True

    runs = {"ours": run_ours, "ours_sdpa_kernel": run_ours_sdpa, "open_clip": lambda: run_theirs(ids),
            "open_clip_trimmed": lambda: run_theirs(trimmed)}
    for fn in runs.values():  # warm-up
        fn()
    times = {name: [] for name in runs}
    for _ in range(args.reps):  # interleaved
        for name, fn in runs.items():
            ours.zero_grad(set_to_none=True)
            theirs.zero_grad(set_to_none=True)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    peak = matmul_peak()
    median = {name: statistics.median(ts) for name, ts in times.items()}
    rate = {name: args.batch / t for name, t in median.items()}
    mfu = our_flops(ours, ids) / median["ours"] / peak
    print(f"preset={args.preset} width={enc.width} layers={enc.layers} heads={enc.heads} vocab={vocab_size} "
          f"context={enc.context_length} batch={args.batch} tokens/seq: {int(ids.ne(0).sum(1).float().mean())} "
          f"(longest {trimmed.shape[1]}) threads={torch.get_num_threads()} reps={args.reps} dtype=bf16 autocast")
    for name in runs:
        print(f"{name:18s} {rate[name]:8.1f} samples/s   (median {median[name] * 1000:.0f} ms per fwd+bwd)")
    print(f"bf16 matmul peak measured: {peak / 1e9:.0f} GFLOP/s; our achieved: "
          f"{our_flops(ours, ids) / median['ours'] / 1e9:.0f} GFLOP/s; MFU={mfu * 100:.1f}%")
    print(f"ratio_vs_open_clip_trimmed_input={median['open_clip_trimmed'] / median['ours']:.2f}")
    ratio = median["open_clip"] / median["ours"]
    print(f"ratio_vs_open_clip={ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
