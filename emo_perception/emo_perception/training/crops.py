"""The face stage's crops streamed from the cache on disk: many cache files' crops (memory-mapped
.npy files, features.py) seen as one (N, S, S) uint8 array that reads only what a batch asks for.

AffectNet's ~290k crops of 64x64 are 1.2 GB, and concatenating them would hold them all in memory
(twice while it copies). `Crops` keeps the pieces where they are: indexing gathers the rows of a
batch from each piece (the OS caches the pages it read; they are file-backed, not the process's own
memory, and are dropped under pressure). bench/bench_face_stream.py measures memory and crops/s.
"""
from __future__ import annotations

import numpy as np


class Rows:
    """Rows `rows` of `array` (a memory-mapped cache file), not copied until indexed."""

    def __init__(self, array, rows):
        self.array, self.rows = array, np.asarray(rows, np.int64)

    def __len__(self):
        return len(self.rows)


class Crops:
    """Pieces (arrays, memory-mapped or not, or Rows of them) in order, indexed as one array."""

    def __init__(self, pieces):
        # plain ndarray views of the maps (np.memmap's own indexing costs ~50 us a call)
        self.pieces = [Rows(np.asarray(p.array), p.rows) if isinstance(p, Rows) else np.asarray(p)
                       for p in pieces if len(p)]
        self.offsets = np.cumsum([0] + [len(p) for p in self.pieces])
        first = self.pieces[0] if self.pieces else np.zeros((0, 64, 64), np.uint8)
        self.item_shape = tuple((first.array if isinstance(first, Rows) else first).shape[1:])

    def __len__(self):
        return int(self.offsets[-1])

    @property
    def shape(self):
        return (len(self), *self.item_shape)

    def __getitem__(self, idx) -> np.ndarray:
        """(B, S, S) uint8 for an index array, list or slice."""
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(len(self)))
        idx = np.asarray(idx, np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"crop index out of range 0..{len(self) - 1}")
        out = np.empty((len(idx), *self.item_shape), np.uint8)
        piece = np.searchsorted(self.offsets, idx, side="right") - 1
        for j, (p, i) in enumerate(zip(piece.tolist(), (idx - self.offsets[piece]).tolist())):
            src = self.pieces[p]      # one crop at a time: a batch touches ~one crop per file
            out[j] = src.array[src.rows[i]] if isinstance(src, Rows) else src[i]
        return out
