"""Run by tests/test_distributed.py under torchrun (2 processes): train a few tiny runs data-parallel and
write each rank's weights, metrics and history, so the test can compare ranks with each other and
with a single-process run. Usage: torchrun --nproc-per-node 2 tests/ddp_worker.py OUT"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_split, make_task  # noqa: E402

from transferlab.engine import TrainConfig  # noqa: E402
from transferlab.engine.distributed import distributed_session  # noqa: E402
from transferlab.engine.run import train_run  # noqa: E402
from transferlab.errors import ConfigError  # noqa: E402
from transferlab.models import create_backbone  # noqa: E402
from transferlab.strategies import create_strategy  # noqa: E402

# name: (backbone, its config, strategy, strategy options). Batch 16 over 72 examples: the last batch has 8.
CASES = {
    "mlp-gradual": ("mlp", {"hidden": [32, 16], "dropout": 0.0}, "gradual-unfreeze", {"every_steps": 3}),
    "mlp-partial-cached": ("mlp", {"hidden": [32, 16], "dropout": 0.0}, "partial", {"freeze": 1}),
    "cnn-full": ("cnn", {"channels": [4, 8], "hidden": 16}, "full", {}),
}


def run_case(name: str, batch_size: int = 16):
    backbone_name, backbone_cfg, strategy, options = CASES[name]
    task = make_task(n_per_class=30, classes=3, size=8)
    split = make_split(task)
    torch.manual_seed(0)
    backbone = create_backbone(backbone_name, task.input_spec, **backbone_cfg)
    cfg = TrainConfig(epochs=3, batch_size=batch_size, lr=3e-3, threads=1, device="cpu")
    return train_run(backbone, split, create_strategy(strategy, **options), cfg)


def main(out: Path) -> None:
    with distributed_session("cpu") as session:
        record: dict = {"rank": session.rank, "world": session.world}
        for name in CASES:
            model, run, metrics = run_case(name)
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"{name}-rank{session.rank}.safetensors"))
            record[name] = {"metrics": metrics, "history": run.history, "processes": run.config["processes"]}
        try:
            run_case("mlp-gradual", batch_size=15)
        except ConfigError as err:
            record["indivisible_batch"] = str(err)
        (out / f"rank{session.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
