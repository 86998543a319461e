"""Exact path-dependent TreeSHAP for a stored random forest, in numpy (the web process starts no
JVM and imports no compiled explainer).

Why our own and not ``shap``: shap 0.51 would accept the trees as arrays, but it pulls numba and
llvmlite into the web process (hundreds of MB, a slow first import) for one function, and its C++
walks one record and one tree at a time. The algorithm is short, and written over whole batches it
runs as a few array operations per block of leaves; it is checked against a brute-force Shapley
computation over the same value function (tests/test_treeshap.py).

The value function is Lundberg et al. 2018's (path-dependent, Algorithm 2): a tree's expected
output when only the features in S are known, a split on an unknown feature sending the row down
both sides weighted by the children's training covers. Per leaf that is a product over the
distinct features U on its path, of ``o_j`` (1 if the row meets every condition on feature j along
the path, else 0) for j in S and ``z_j`` (the product of those splits' cover fractions) otherwise.
The Shapley value of feature i in U is therefore

    phi_i = v_leaf * (o_i - z_i) * sum_k w_k * e_k,   w_k = k! (d-1-k)! / d!,  d = |U|,

with e_k the t^k coefficient of prod_{j in U, j != i} (z_j + o_j t). The leaf's polynomial
Q = prod_j (z_j + o_j t) is built once per row and leaf; for o_i = 0 the factor of i is the
constant z_i, so phi_i = -v * Q.w (the same for every such i); for o_i = 1, dividing by (t + z_i)
is a linear map of Q fixed by z_i, so every phi_i is one row of a per-leaf matrix times Q: a batched
matmul. That is the paper's EXTEND/UNWIND arithmetic, grouped by leaf instead of recursed per row.
Leaves are grouped by d, so each group's arrays are rectangular, and scored in slices bounded by
SLICE_VALUES. As o is 0 or 1, a path of d features has only 2^d sets of factors: for short paths
(d <= TABLED_LENGTH) they are computed once per model and a row looks its own up. The base is the
forest's expected output, sum over leaves of v * prod z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

LEAVES_PER_BLOCK = 1024  # leaves scored together: the arrays are leaves x path length x rows
# Numbers one slice's leaf polynomials hold (512 kB of float64): the polynomial is rebuilt in d
# passes, and a slice that stays in the CPU's cache does them about twice as fast as an 8 MB one.
SLICE_VALUES = 1 << 16
# Paths of at most this many distinct features have their factors tabled once per model, for
# each of the 2^d ways a row can meet them; a row then looks its factors up (d comparisons and a
# gather instead of the O(d^2) polynomial). 2^6 x 6 numbers a leaf at the most.
TABLED_LENGTH = 6


def leaf_paths(nodes: Sequence[list], root: int) -> list[tuple[int, dict[int, tuple[float, float, float]]]]:
    """Every leaf under ``root`` of a predictors.Forest's nodes (feature, threshold, left, right,
    cover as lists; a leaf is its own child there) with its path's conditions per distinct
    feature: feature -> (lo, hi, z), the row meeting them when lo < x <= hi, z the product of the
    path's cover fractions on that feature (a node with no cover gives its children 0)."""
    feature, threshold, left, right, cover = nodes
    found, stack = [], [(root, {})]
    while stack:
        node, path = stack.pop()
        if left[node] == node:
            found.append((node, path))
            continue
        f, t, weight = feature[node], threshold[node], cover[node]
        lo, hi, z = path.get(f, (-math.inf, math.inf, 1.0))
        for child, bounds in ((left[node], (lo, min(hi, t))), (right[node], (max(lo, t), hi))):
            share = cover[child] / weight if weight > 0 else 0.0
            stack.append((child, {**path, f: (*bounds, z * share)}))
    return found


def _unwind_rows(z: np.ndarray) -> np.ndarray:
    """(L, d) cover fractions -> (L, d+1, d+1): row i < d maps a leaf's polynomial Q to
    (1 - z_i) * sum_k w_k R_k, R = Q / (t + z_i) (feature i met by the row); row d to -Q.w
    (any feature the row does not meet)."""
    count, d = z.shape
    w = np.array([math.factorial(k) * math.factorial(d - 1 - k) / math.factorial(d) for k in range(d)])
    rows = np.zeros((count, d + 1, d + 1))
    # R_k = sum_{m > k} Q_m (-z)^(m-1-k), so the weight of Q_m is g_m = sum_{k < m} w_k (-z)^(m-1-k).
    powers = (-z)[..., None] ** np.arange(d)  # (L, d, d): (-z_i)^p
    for m in range(1, d + 1):
        rows[:, :d, m] = powers[:, :, m - 1 :: -1][:, :, :m] @ w[:m]
    rows[:, :d, :] *= (1.0 - z)[..., None]
    rows[:, d, :d] = -w
    return rows


class ForestShap:
    """A forest's leaves grouped for batched TreeSHAP; ``explain`` gives each row's base (the
    expected output) and one contribution per encoded column. ``forest`` is a predictors.Forest
    (classification values are leaf class distributions, averaged over the trees), ``cover`` its
    nodes' training covers in the same order; the paths are read once, here."""

    def __init__(self, forest: Any, cover: np.ndarray, width: int):
        self.classes, self.width = forest.classes, width
        trees = int(forest.roots.size)
        arrays = (forest.feature, forest.threshold, forest.left, forest.right, np.asarray(cover, dtype=np.float64))
        nodes = [array.tolist() for array in arrays]
        by_length: dict[int, list[tuple[Any, ...]]] = {}
        base = np.zeros(forest.classes or 1)
        for root in forest.roots.tolist():
            for leaf, path in leaf_paths(nodes, root):
                value = np.atleast_1d(forest.value[leaf]) / trees
                base += value * math.prod(z for _, _, z in path.values())
                by_length.setdefault(len(path), []).append((value, path))
        self.base = base
        self.blocks = [
            self._block(group[start : start + LEAVES_PER_BLOCK])
            for d, group in sorted(by_length.items())
            if d > 0
            for start in range(0, len(group), LEAVES_PER_BLOCK)
        ]

    @staticmethod
    def _block(leaves: list[tuple[np.ndarray, dict]]) -> dict[str, np.ndarray]:
        columns = np.array([list(path) for _, path in leaves], dtype=np.int64)  # (L, d)
        bounds = np.array([list(path.values()) for _, path in leaves], dtype=np.float64)  # (L, d, 3)
        order = np.argsort(columns.ravel(), kind="stable")
        ordered = columns.ravel()[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        block = {
            "columns": columns, "lo": bounds[..., 0, None], "hi": bounds[..., 1, None], "z": bounds[..., 2],
            "rows": _unwind_rows(bounds[..., 2]), "value": np.stack([v for v, _ in leaves]),
            "order": order, "starts": starts, "targets": ordered[starts],
        }  # fmt: skip
        d = columns.shape[1]
        if d <= TABLED_LENGTH:  # every pattern's factors: (L, 2^d, d), pattern p meeting j when bit j is set
            block["bits"] = (1 << np.arange(d))[None, :, None]
            patterns = (np.arange(1 << d)[None, :] & block["bits"][0]).astype(bool)  # (d, 2^d)
            block["table"] = ForestShap._factors(block, np.broadcast_to(patterns, (len(leaves), *patterns.shape)))
            block["table"] = np.ascontiguousarray(block["table"].transpose(0, 2, 1))
        return block

    def explain(self, matrix: np.ndarray, chosen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n,) base and (n, width) contributions of each row's output: the class ``chosen[r]``'s
        probability (classification) or the value, base + contributions summing to it."""
        n = matrix.shape[0]
        pick = np.zeros(n, dtype=np.int64) if chosen is None else np.asarray(chosen, dtype=np.int64)
        phi = np.zeros((self.width, n))
        columns_first = np.ascontiguousarray(matrix.T)
        for block in self.blocks:
            count, d = block["columns"].shape
            step = max(1, SLICE_VALUES // (count * (d + 1)))
            for start in range(0, n, step):
                part = slice(start, start + step)
                phi[block["targets"], part] += self._block_contributions(block, columns_first[:, part], pick[part])
        return self.base[pick], phi.T

    @staticmethod
    def _block_contributions(block: dict[str, np.ndarray], x: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """One block's contributions to the rows x (columns first), one row per column of
        ``block["targets"]`` (the columns its paths split on)."""
        count, d = block["z"].shape
        values = x[block["columns"]]  # (L, d, n)
        met = (values > block["lo"]) & (values <= block["hi"])
        if "table" in block:
            code = (met * block["bits"]).sum(axis=1)  # (L, n): which of the 2^d patterns
            share = block["table"][np.arange(count)[:, None], code].transpose(0, 2, 1)  # (L, d, n)
        else:
            share = ForestShap._factors(block, met)
        share = share * block["value"][:, pick][:, None, :]
        return np.add.reduceat(share.reshape(count * d, -1)[block["order"]], block["starts"], axis=0)

    @staticmethod
    def _factors(block: dict[str, np.ndarray], met: np.ndarray) -> np.ndarray:
        """(L, d, n): each leaf's (o_i - z_i) * sum_k w_k e_k for each path feature i and row,
        from which path conditions the row meets (the module's formula, before the leaf value)."""
        z = block["z"]
        count, d = z.shape
        ones = met.astype(np.float64)
        poly = np.empty((count, d + 1, met.shape[2]))  # Q, built factor by factor in place
        poly[:, 0, :] = 1.0
        for j in range(d):
            carried = poly[:, : j + 1, :] * ones[:, None, j, :]
            poly[:, : j + 1, :] *= z[:, j, None, None]
            poly[:, j + 1, :] = 0.0
            poly[:, 1 : j + 2, :] += carried
        mapped = block["rows"] @ poly  # (L, d+1, n)
        return np.where(met, mapped[:, :d, :], mapped[:, d, None, :])
