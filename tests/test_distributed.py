"""Sharded training on this machine's CPUs: FSDP2 over gloo, with two processes.

The accelerate configs (configs/accelerate/fsdp.yaml, deepspeed_zero2.yaml) cannot be run on CPUs:
accelerate 1.x turns FSDP and DeepSpeed on only for GPU-like devices (docs/training.md, "Several GPUs or processes").
What can run here is FSDP2 itself - the sharding fsdp.yaml asks for, one unit per `G2MDecoderLayer` -
and this test checks that a sharded step equals an unsharded one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_an_fsdp2_step_on_two_cpu_processes_equals_one_unsharded_step(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "fsdp_step.py")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["world_size"] == 2 and result["units"] == 3
    assert result["parameter"] == "DTensor"  # the parameters really are sharded
    assert result["max_difference"] < 1e-6  # after an AdamW step, against one process on the whole batch
