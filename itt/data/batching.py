"""Batches padded per batch, formed by length.

Training batches are grouped by length inside shuffled mega-batches: indices are shuffled,
cut into mega-batches of ``batch_size * mega_batch_factor`` examples, each sorted by length
and cut into batches, and the batch order is shuffled again. Padding almost vanishes while
each batch is still a random draw from a random mega-batch. Evaluation batches are sorted
by length outright (order does not matter there; predictions are put back in order).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from itt.data.tokenize import TokenizedSplit


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, split: TokenizedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return int(i), self.split.item(int(i))


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """See the module docstring. ``mode``: length_grouped | random | sorted."""

    def __init__(self, lengths: Sequence[int], batch_size: int, mode: str = "length_grouped",
                 mega_batch_factor: int = 50, seed: int = 0, drop_last: bool = False,
                 shard: bool = True) -> None:
        if mode not in ("length_grouped", "random", "sorted"):
            raise ValueError(f"data.batching must be length_grouped, random or sorted, not {mode!r}")
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.mode = mode
        self.mega = max(1, int(mega_batch_factor)) * self.batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.shard = shard  # split batches across DDP ranks (False: one process scores all)
        self.epoch = 0
        self._explicit_epoch = False
        self._skip: tuple[int, int] | None = None

    def _world(self) -> tuple[int, int]:
        return _world() if self.shard else (1, 0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._explicit_epoch = True

    def resume(self, epoch: int, batches_done: int) -> None:
        """Continue an interrupted run: ``epoch`` is the epoch in progress and the first
        ``batches_done`` of this rank's batches in it were already trained on.

        Set before the trainer creates its iterator (a DataLoader with workers draws indices
        at once), so the resumed epoch has the same order as it would have had uninterrupted
        and skips what was done rather than repeating it."""
        self.set_epoch(epoch)
        self._skip = (int(epoch), max(0, int(batches_done)))

    def _batches(self, epoch: int) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, epoch])
        if self.mode == "sorted":
            order = np.argsort(-self.lengths, kind="stable")
            world, rank = self._world()
            if world > 1:
                # Evaluation under DDP: every rank scores every world-th item of the sorted
                # order, so that each rank has a batch (Lightning requires one) whenever
                # there are as many items as ranks, and the ranks' lengths stay alike.
                order = order[rank::world]
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        perm = rng.permutation(n)
        if self.mode == "random":
            batches = [perm[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        else:
            batches = []
            for s in range(0, n, self.mega):
                chunk = perm[s:s + self.mega]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
            # Keep the longest batch first so that an out-of-memory error shows at once.
            longest = int(np.argmax([self.lengths[b].max() for b in batches])) if batches else 0
            first = batches.pop(longest) if batches else None
            order = rng.permutation(len(batches))
            batches = ([first] if first is not None else []) + [batches[i] for i in order]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        current = self.epoch
        batches = self._batches(current)
        if not self._explicit_epoch:
            self.epoch += 1
        world, rank = self._world()
        if world > 1 and self.mode != "sorted":
            # Training: equal batch counts per rank (DDP steps in lockstep). Evaluation
            # (sorted) is sharded by item in _batches; ranks gather predictions at the end.
            usable = len(batches) - len(batches) % world
            batches = batches[rank:usable:world]
        if self._skip is not None:
            epoch, done = self._skip
            self._skip = None
            if epoch == current:
                batches = batches[done:]
        for b in batches:
            yield b.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        world, rank = self._world()
        if self.mode == "sorted" and world > 1:
            return -(-len(range(rank, n, world)) // self.batch_size)
        if self.mode == "length_grouped":
            count = sum(-(-min(self.mega, n - s) // self.batch_size) for s in range(0, n, self.mega))
        else:
            count = -(-n // self.batch_size)
        if self.drop_last:
            count = n // self.batch_size
        if world > 1:
            return count // world
        return count


class Collator:
    """Pads a list of (index, (ids, types, label)) to the longest sequence in the batch.

    Every collator returns the items' indices as ``batch["index"]`` so that predictions made
    in length-sorted (or sharded) order can be put back in the split's order."""

    def __init__(self, pad_id: int, padding_side: str = "right", regression: bool = False,
                 pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_id
        self.left = padding_side == "left"
        self.regression = regression
        self.multiple = pad_to_multiple_of

    def __call__(self, pairs) -> dict[str, torch.Tensor]:
        index = torch.tensor([i for i, _ in pairs], dtype=torch.long)
        items = [item for _, item in pairs]
        n = len(items)
        width = max(len(ids) for ids, _, _ in items)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        has_types = items[0][1] is not None
        types = torch.zeros((n, width), dtype=torch.long) if has_types else None
        for i, (ids, tt, _) in enumerate(items):
            k = len(ids)
            sl = slice(width - k, width) if self.left else slice(0, k)
            input_ids[i, sl] = torch.from_numpy(ids.astype(np.int64))
            mask[i, sl] = 1
            if has_types:
                types[i, sl] = torch.from_numpy(tt.astype(np.int64))
        labels = torch.tensor([x for _, _, x in items],
                              dtype=torch.float32 if self.regression else torch.long)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "index": index}
        if has_types:
            batch["token_type_ids"] = types
        return batch


def make_loader(split: TokenizedSplit, batch_size: int, collator: Collator, *, train: bool,
                mode: str = "length_grouped", mega_batch_factor: int = 50, seed: int = 0,
                num_workers: int = 0, pin_memory: bool = False, shard: bool = True) -> torch.utils.data.DataLoader:
    """``shard=False`` for evaluation by one process while a DDP group exists (rank 0's final
    test-set scoring after training)."""
    sampler = LengthGroupedBatchSampler(split.lengths, batch_size, mode if train else "sorted",
                                        mega_batch_factor, seed, shard=shard)
    # A loader of its own generator: creating an iterator draws a seed from it, and a draw
    # from the global RNG would make dropout depend on how often loaders were iterated (a
    # resumed run creates its iterators at other moments than an uninterrupted one).
    generator = torch.Generator().manual_seed(int(seed))
    return torch.utils.data.DataLoader(TokenDataset(split), batch_sampler=sampler, collate_fn=collator,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       persistent_workers=num_workers > 0, generator=generator)
