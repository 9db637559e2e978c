"""Batches of every task type: padded per batch.

Training batches are drawn in random order by default (``data.batching=random``). With
``data.batching=length_grouped`` they are grouped by length inside shuffled mega-batches:
indices are shuffled, cut into mega-batches of ``batch_size * mega_batch_factor`` examples,
each sorted by length and cut into batches, and the batch order is shuffled again. Padding
almost vanishes, but a batch then holds texts of alike length: where length goes with the
label, fewer labels per batch, and accuracy fell below random order's (BENCHMARKS.md,
section 3b), which is why random order is the default. Evaluation batches are sorted by
length outright (order does not matter there; predictions are put back in order).
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch

from itt.data.encoding import EncodedSplit


class TokenDataset(torch.utils.data.Dataset):
    """Items ``(index, split.item(index))`` of an encoded split (anything with ``item``)."""

    def __init__(self, split: EncodedSplit) -> None:
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


def pad_2d(seqs: Sequence[np.ndarray], pad: int, left: bool, width: int | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad sequences into ``[n, width]`` (and their attention mask) on one side."""
    n = len(seqs)
    width = width if width is not None else max((len(s) for s in seqs), default=1)
    width = max(width, 1)
    out = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, s in enumerate(seqs):
        k = len(s)
        if not k:
            continue
        sl = slice(width - k, width) if left else slice(0, k)
        out[i, sl] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        mask[i, sl] = 1
    return out, mask


class PadCollator:
    """Base of every task type's collator: pads on the tokenizer's padding side, and every
    batch has the items' indices as ``batch["index"]``, so that predictions made in
    length-sorted (or sharded) order can be put back in the split's order."""

    def __init__(self, pad_id: int, padding_side: str = "right") -> None:
        self.pad_id = pad_id
        self.left = padding_side == "left"

    @staticmethod
    def unzip(pairs: list[tuple[int, Any]]) -> tuple[torch.Tensor, list[Any]]:
        """The indices (a tensor) and the items of a list of (index, item)."""
        return torch.tensor([i for i, _ in pairs], dtype=torch.long), [item for _, item in pairs]

    def pad(self, seqs: Sequence[np.ndarray], value: int | None = None, width: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`pad_2d` on this collator's side, with the pad id unless ``value`` is given."""
        return pad_2d(seqs, self.pad_id if value is None else value, self.left, width)

    def add_types(self, batch: dict[str, Any], types: Sequence[np.ndarray | None], width: int) -> None:
        """``batch["token_type_ids"]`` where the items have token types."""
        if types and types[0] is not None:
            batch["token_type_ids"], _ = pad_2d(types, 0, self.left, width)


class Collator(PadCollator):
    """The sequence types' collator: pads a list of (index, (ids, types, label)) to the
    longest sequence in the batch (rounded up to ``pad_to_multiple_of``)."""

    def __init__(self, pad_id: int, padding_side: str = "right", regression: bool = False,
                 pad_to_multiple_of: int | None = None) -> None:
        super().__init__(pad_id, padding_side)
        self.regression = regression
        self.multiple = pad_to_multiple_of

    def __call__(self, pairs: list[tuple[int, Any]]) -> dict[str, torch.Tensor]:
        index, items = self.unzip(pairs)
        width = max(len(ids) for ids, _, _ in items)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        input_ids, mask = self.pad([ids for ids, _, _ in items], width=width)
        labels = torch.tensor([x for _, _, x in items],
                              dtype=torch.float32 if self.regression else torch.long)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "index": index}
        self.add_types(batch, [tt for _, tt, _ in items], width)
        return batch


def make_loader(split: EncodedSplit, batch_size: int, collator: PadCollator, *, train: bool,
                mode: str = "random", mega_batch_factor: int = 50, seed: int = 0,
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
