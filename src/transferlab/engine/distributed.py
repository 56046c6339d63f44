"""Data-parallel training over several processes with PyTorch's own engine: torch.distributed + DistributedDataParallel.

Processes are started by torchrun (`transferlab pretrain ... --nproc N` starts it for you, or
`torchrun --nproc-per-node N -m transferlab pretrain ...`), which sets RANK, LOCAL_RANK and
WORLD_SIZE. The backend is gloo on CPU and nccl on CUDA (one GPU per process, by LOCAL_RANK).

What each process does, so that N processes train like one with the same global batch:
- every process draws the same seeded permutation per epoch; each global batch of `batch_size`
  examples is cut into N contiguous shares of batch_size / N (a smaller last batch into near-equal
  shares), and each process trains on its share;
- each share's mean loss is scaled by (share size × N / batch size), so the mean of the gradients
  that DDP all-reduces is exactly the gradient of the global batch mean;
- the logged loss is all-reduced once per step (which also makes every process stop together
  on a non-finite loss); BatchNorm statistics are per share, and buffers follow rank 0;
- validation and test metrics are computed on a strided shard per process and reduced across
  processes by torchmetrics (counts summed, so the numbers equal a single process's);
- only rank 0 writes checkpoints and model folders, prints progress and talks to a tracker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError


def env_world() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) in a plain process."""
    try:
        return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                int(os.environ.get("WORLD_SIZE", 1)))
    except ValueError:
        raise ConfigError("RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers (torchrun sets them); "
                          f"got {os.environ.get('RANK')!r}, {os.environ.get('LOCAL_RANK')!r}, "
                          f"{os.environ.get('WORLD_SIZE')!r}") from None


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a distributed run: the process that writes and prints."""
    return env_world()[0] == 0


def process_share() -> tuple[int, int]:
    """(rank, world size) of the running process group, or (0, 1) when none is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass
class Session:
    """This process's place in a run: rank 0 of 1 unless torchrun started several."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. writing a packaged encoder into the store), then the others."""
        if self.world > 1 and not self.is_main:
            _barrier()
        yield
        if self.world > 1 and self.is_main:
            _barrier()


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[Session]:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA) for the block; a no-op in one process.

    A process group that the caller already initialised is used as it is, and left running.

    Example (in a script started with `torchrun --nproc-per-node 2 script.py`):
        >>> with distributed_session() as s:  # doctest: +SKIP
        ...     print(s.rank, s.world)
    """
    rank, local_rank, world = env_world()
    if world <= 1:
        yield Session()
        return
    import torch.distributed as dist

    if dist.is_initialized():
        yield Session(dist.get_rank(), dist.get_world_size())
        return
    from .device import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    try:
        yield Session(rank, world)
        # Every rank finishes before the group is torn down: a gloo process that destroys its group while
        # a peer is still exiting can abort ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


class DataParallel:
    """One `fit`'s data parallelism: per-process shares of each global batch, a DDP wrapper, reductions."""

    def __init__(self, batch_size: int, device: torch.device) -> None:
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        check_global_batch(batch_size, self.world)
        self.device = device
        self._ddp: nn.Module | None = None
        self._wrapped: tuple[int, ...] | None = None
        self._net: nn.Module | None = None

    @staticmethod
    def current(batch_size: int, device: torch.device) -> "DataParallel | None":
        """A DataParallel when a process group of several processes is running, else None."""
        return DataParallel(batch_size, device) if process_share()[1] > 1 else None

    def wrap(self, net: nn.Module) -> None:
        """(Re)build the DDP wrapper when the set of parameters that train has changed.

        DDP registers its gradient hooks on the parameters that require grad when it is built, so a
        block unfrozen later (LP-FT, gradual unfreezing) needs a new wrapper to be synchronised.
        """
        from torch.nn.parallel import DistributedDataParallel

        trainable = tuple(id(p) for p in net.parameters() if p.requires_grad)
        if self._net is net and trainable == self._wrapped:
            return
        self._net, self._wrapped = net, trainable
        if not trainable:  # nothing trains this phase: nothing to synchronise
            self._ddp = net
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        self._ddp = DistributedDataParallel(net, device_ids=ids)

    def loss(self, step_loss: Callable[[Callable[..., Any], torch.Tensor], torch.Tensor], batch_len: int,
             device: torch.device) -> torch.Tensor:
        """This process's share of a global batch of `batch_len` rows: `step_loss(forward, rows)` computes
        the mean loss of those rows through the DDP wrapper; it is scaled so that DDP's mean of the
        processes' gradients is the gradient of the global batch mean."""
        assert self._ddp is not None, "wrap(net) before the first step"
        g = batch_len
        share = torch.arange(g, device=device).tensor_split(self.world)[self.rank]  # contiguous near-equal cut
        weight = len(share) * self.world / g
        if len(share) == 0:  # a last batch smaller than the process count: take part with weight 0
            share, weight = torch.zeros(1, dtype=torch.long, device=device), 0.0
        return step_loss(self._ddp, share) * weight

    def global_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The global batch's loss on every process (one all-reduce; every process sees a NaN together)."""
        import torch.distributed as dist

        total = loss.detach() / self.world
        dist.all_reduce(total)
        return total

    def sync_buffers(self, model: nn.Module) -> None:
        """Every process takes rank 0's buffers (BatchNorm statistics), so all evaluate and end identical."""
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer, 0)

    def check_replicas(self, model: nn.Module) -> None:
        """Fail loudly if the processes' weights differ (DDP keeps them equal; a difference is a bug)."""
        import torch.distributed as dist

        with torch.no_grad():  # one float64 sum per tensor: tiny to gather, and no pickled objects
            local = torch.stack([t.detach().double().sum() for t in model.state_dict().values()
                                 if t.is_floating_point()]).to(self.device)
        gathered = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(gathered, local)
        if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
            raise RuntimeError("data-parallel processes ended with different weights; please report this as a bug")


def sharded_metrics(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                    metrics: dict[str, Any], device: torch.device) -> dict[str, float]:
    """Update torchmetrics `metrics` with this process's strided shard (x[rank::world]); compute() reduces
    them across processes, so every process gets the numbers of the whole split.

    The metric states live on `device` (nccl reduces CUDA tensors only).
    """
    rank, world = process_share()
    xs, ys = x[rank::world], y[rank::world]
    metrics = {name: metric.to(device) for name, metric in metrics.items()}
    if len(xs):
        out, ys = predict(xs).to(device), ys.to(device)
        for metric in metrics.values():
            metric.update(out, ys)
    return {name: float(metric.compute()) for name, metric in metrics.items()}


def check_global_batch(batch_size: int, world: int) -> None:
    """The global batch must split evenly between the processes."""
    if batch_size % world:
        lower = batch_size - batch_size % world
        raise ConfigError(
            f"--batch-size {batch_size} must be divisible by the number of processes ({world}): each "
            f"process trains on batch_size / {world} examples of every batch; pass --batch-size "
            f"{lower or world} or {lower + world}"
        )


def launch(nproc: int, argv: list[str]) -> int:
    """Run `python -m transferlab ARGV` in `nproc` processes on this machine with torchrun's launcher
    (torch.distributed.run, in this process); the exit code of the first process that failed, else 0.

    Example:
        >>> launch(2, ["pretrain", "--data", "digits", "--backbone", "mlp", "--out", "m"])  # doctest: +SKIP
        0
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nproc < 1:
        raise ConfigError(f"--nproc must be a whole number ≥ 1; got {nproc}")
    args = get_args_parser().parse_args(["--standalone", "--nnodes=1", f"--nproc-per-node={nproc}",
                                         "-m", "transferlab", *argv])
    agent_log = logging.getLogger("torch.distributed.elastic")
    level, threads = agent_log.level, os.environ.get("OMP_NUM_THREADS")
    agent_log.setLevel(logging.CRITICAL)  # a failed worker has printed its own one-line error already
    os.environ["OMP_NUM_THREADS"] = threads or "1"  # each process: 1 thread unless --threads says otherwise
    try:
        run(args)
    except ChildFailedError as err:
        return err.get_first_failure()[1].exitcode or 1
    finally:
        agent_log.setLevel(level)
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return 0
