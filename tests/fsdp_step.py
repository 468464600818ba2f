"""One FSDP2 training step of a small G2M decoder on 2 CPU processes over gloo (run by torchrun).

Sharded as configs/accelerate/fsdp.yaml asks (one unit per `G2MDecoderLayer`, then the whole model),
each process takes its half of a fixed batch; rank 0 then compares the gathered parameters with the
same step taken by one unsharded process on the whole batch and prints the largest difference.
"""

from __future__ import annotations

import copy
import json
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from g2m_hf import G2MConfig, G2MForCausalLM
from g2m_hf.modeling_g2m import G2MDecoderLayer


def step(model: torch.nn.Module, ids: torch.Tensor) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    config = G2MConfig(vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                       intermediate_size=64, style_adapter_layers=[1], hidden_dropout_prob=0.0,
                       attention_dropout=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    reference = G2MForCausalLM(config)
    sharded = copy.deepcopy(reference)
    units = [module for module in sharded.modules() if isinstance(module, G2MDecoderLayer)]
    for unit in units:
        fully_shard(unit)
    fully_shard(sharded)
    batch = torch.randint(3, 64, (2 * world, 24), generator=torch.Generator().manual_seed(1))
    loss = step(sharded, batch.chunk(world)[rank])  # every half has as many tokens: the mean of the means
    gathered = {name: tensor.full_tensor() for name, tensor in sharded.state_dict().items()}
    if rank == 0:
        step(reference, batch)
        expected = reference.state_dict()
        difference = max((gathered[name] - value).abs().max().item() for name, value in expected.items())
        sharded_kind = type(next(sharded.parameters())).__name__
        print(json.dumps({"world_size": world, "units": len(units), "parameter": sharded_kind,
                          "max_difference": difference, "loss": loss}))
    # Both ranks leave together, and neither runs interpreter finalisation afterwards: the sharded
    # parameters' device mesh keeps the gloo process group alive past destroy_process_group, and its
    # worker threads torn down during finalisation can abort the process (SIGABRT, "terminate called
    # without an active exception") after the step has passed; seen once under load in CI.
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
