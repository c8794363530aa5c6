"""Launched by tests/test_training_ddp.py: ``torchrun --nproc_per_node 2 ddp_worker.py OUT``, or
plainly with WORLD_SIZE unset for the single-process reference, which trains on both ranks' batches
of each step in one batch. Trains a small CNN with the library's SupervisedTrainer and saves the
final weights of this rank."""
import sys
from pathlib import Path

import torch
from torch import nn

from eyegen_lib.core.distributed import DistInfo, init_distributed, shutdown_distributed
from eyegen_lib.core.training import SupervisedTrainer
from eyegen_lib.science.batches import BatchSource, EpochBatches


class BothRanks(BatchSource):  # iterate() over batch(); no shard of its own
    """Step i's batches of ranks 0 and 1 of a 2-process run, as one batch."""

    def __init__(self, data, batch):
        self.parts = [EpochBatches(data, batch, dist=DistInfo(r, 2)) for r in (0, 1)]

    def batch(self, step):
        a, b = (p.batch(step) for p in self.parts)
        return tuple(torch.cat([x, y]) for x, y in zip(a, b))


def main(out: Path, per_rank_batch: int) -> None:
    torch.set_num_threads(1)
    info = init_distributed()
    torch.manual_seed(0)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 1, 12, 12, generator=g)
    y = x.mean(dim=(1, 2, 3)).unsqueeze(1) * 3 + 0.5
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 144, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = SupervisedTrainer(model, opt, nn.functional.mse_loss, device="cpu", dist_info=info)
    batches = EpochBatches((x, y), per_rank_batch, dist=info) if info.enabled else BothRanks((x, y), per_rank_batch)
    history = trainer.fit(batches, steps=6, progress=False)
    torch.save({"state": trainer.module("model").state_dict(), "history": history},
               out / f"rank{info.rank}_of{info.world_size}.pt")
    shutdown_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4)
