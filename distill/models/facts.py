"""Size and cost of a model, measured rather than hand-counted.

FLOPs come from torch.utils.flop_counter.FlopCounterMode, which counts convolutions and matrix
multiplies as 2 FLOPs per multiply-add (so FLOPs = 2 x MACs) and ignores the cheap element-wise ops
(BN, ReLU, pooling, additions). Papers that quote "FLOPs" often mean MACs: halve ours to compare.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def model_facts(model: nn.Module, input_size: int | None = None, batch: int = 1) -> dict:
    """-> {"params", "bytes" (fp32 parameters + floating buffers), "flops" and "gflops" per image}.

    `input_size` defaults to `model.input_size`; the square (batch, 3, S, S) input is all zeros
    (the count does not depend on values). BN running statistics count in "bytes" (they ship with the
    weights) but not in "params"; integer buffers (BN's num_batches_tracked) count in neither."""
    size = int(input_size if input_size is not None else model.input_size)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    first = next(model.parameters(), None)
    x = torch.zeros(batch, 3, size, size, device=first.device if first is not None else "cpu",
                    dtype=first.dtype if first is not None else torch.float32)
    was_training = model.training
    model.eval()  # train-mode BN would update the running statistics with this dummy input
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    flops = counter.get_total_flops() / batch
    return {"params": int(params), "bytes": int(4 * (params + buffers)), "flops": int(flops), "gflops": flops / 1e9}
