"""The networks of weight-agnostic neural network search (Gaier & Ha 2019, "Weight Agnostic Neural
Networks", NeurIPS): feed-forward graphs whose every connection carries one shared weight, the three
topology mutations of Sec. 3 (insert node, add connection, change activation), and a forward pass
of a whole population at once, each network under each value of the shared weight.

A network's nodes are numbered: inputs first (the last input is the bias, a constant 1), then the
outputs, then hidden nodes in the order they were inserted. Connections are (source, target) pairs;
the graph is a DAG with inputs as sources and outputs as sinks, so every mutation here keeps it
acyclic (a test drives long random mutation sequences through :func:`check_network`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "step": lambda x: (x > 0).astype(np.float64),
    "sin": np.sin,
    "cos": np.cos,
    "gaussian": lambda x: np.exp(-0.5 * x * x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 0.5 * (np.tanh(0.5 * x) + 1.0),  # = 1 / (1 + e^-x), without overflow
    "inverse": lambda x: -x,  # sign inversion: a division 1/x would be unbounded near 0
    "abs": np.abs,
    "relu": lambda x: np.maximum(x, 0.0),
}
"""The activation set of Gaier & Ha 2019 (Sec. 3 and Table 1 of the appendix), by index: a network
stores indices into this order."""
ACTIVATION_NAMES = tuple(ACTIVATIONS)
ACTIVATION_FUNCS = tuple(ACTIVATIONS.values())
LINEAR = 0
"""Inputs and outputs stay linear; the change-activation mutation reassigns hidden nodes only."""


@dataclass
class Network:
    """One WANN topology: ``activation[i]`` indexes :data:`ACTIVATION_NAMES` for node ``i`` and
    ``edges`` is an (E, 2) array of (source, target) node ids."""

    n_inputs: int
    """Input nodes, the bias (the last of them, always 1) included."""
    n_outputs: int
    activation: np.ndarray
    edges: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.activation)

    @property
    def n_connections(self) -> int:
        return len(self.edges)

    @property
    def n_hidden(self) -> int:
        return self.n_nodes - self.n_inputs - self.n_outputs

    def copy(self) -> Network:
        return Network(self.n_inputs, self.n_outputs, self.activation.copy(), self.edges.copy())

    def is_input(self, node: int) -> bool:
        return node < self.n_inputs

    def is_output(self, node: int) -> bool:
        return self.n_inputs <= node < self.n_inputs + self.n_outputs

    def depths(self) -> np.ndarray:
        """Longest path from a source to each node (inputs 0): a node is computed after every node
        it reads. Raises ValueError on a cycle."""
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        indegree = np.bincount(self.edges[:, 1], minlength=self.n_nodes) if len(self.edges) else None
        if indegree is None:
            return depth
        children: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for src, dst in self.edges.tolist():
            children[src].append(dst)
        ready = [i for i in range(self.n_nodes) if indegree[i] == 0]
        seen = 0
        while ready:  # Kahn's algorithm, carrying the longest-path depth along
            node = ready.pop()
            seen += 1
            for child in children[node]:
                depth[child] = max(depth[child], depth[node] + 1)
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if seen != self.n_nodes:
            raise ValueError("the connections form a cycle")
        return depth

    def forward(self, inputs: np.ndarray, weight: float) -> np.ndarray:
        """Outputs (B, n_outputs) for inputs (B, n_inputs - 1): node value = activation(shared weight
        * sum of its sources' values), node by node in depth order (the reference the batched
        :class:`PopulationForward` is tested against)."""
        x = np.asarray(inputs, dtype=np.float64)
        values = np.zeros((len(x), self.n_nodes))
        values[:, : self.n_inputs - 1] = x
        values[:, self.n_inputs - 1] = 1.0
        depth = self.depths()
        for node in np.argsort(depth, kind="stable"):
            if depth[node] == 0:
                continue
            sources = self.edges[self.edges[:, 1] == node, 0]
            total = weight * values[:, sources].sum(axis=1)
            values[:, node] = ACTIVATION_FUNCS[self.activation[node]](total)
        return values[:, self.n_inputs : self.n_inputs + self.n_outputs]


def minimal_network(n_inputs: int, n_outputs: int, connect_prob: float, rng: np.random.Generator) -> Network:
    """The initial population's topology (Sec. 3, step 1): no hidden nodes, each input-output
    connection present with probability ``connect_prob`` (1: fully connected)."""
    pairs = [(i, n_inputs + o) for i in range(n_inputs) for o in range(n_outputs)]
    keep = rng.random(len(pairs)) < connect_prob
    edges = np.array([p for p, k in zip(pairs, keep, strict=True) if k], dtype=np.int64).reshape(-1, 2)
    return Network(n_inputs, n_outputs, np.full(n_inputs + n_outputs, LINEAR, dtype=np.int64), edges)


def descendants(net: Network) -> np.ndarray:
    """reach[u, v]: a directed path leads from u to v (u itself excluded)."""
    n = net.n_nodes
    reach = np.zeros((n, n), dtype=bool)
    children: list[list[int]] = [[] for _ in range(n)]
    for src, dst in net.edges.tolist():
        children[src].append(dst)
    for node in np.argsort(-net.depths(), kind="stable"):  # deepest first: children are done
        for child in children[node]:
            reach[node, child] = True
            reach[node] |= reach[child]
    return reach


def free_connections(net: Network) -> np.ndarray:
    """Every (source, target) that may be added: not yet connected, the source no output, the target
    no input, and no path from the target back to the source (so the graph stays feed-forward)."""
    n = net.n_nodes
    ok = ~descendants(net).T  # ok[u, v] is False where v reaches u
    np.fill_diagonal(ok, False)
    ok[:, : net.n_inputs] = False
    ok[net.n_inputs : net.n_inputs + net.n_outputs, :] = False
    if len(net.edges):
        ok[net.edges[:, 0], net.edges[:, 1]] = False
    src, dst = np.nonzero(ok[:n, :n])
    return np.stack([src, dst], axis=1).astype(np.int64)


def insert_node(net: Network, rng: np.random.Generator) -> bool:
    """Split a random connection u -> v into u -> h -> v with a new hidden node h of a random
    activation (Sec. 3, "Insert Node"). False when there is no connection to split."""
    if not len(net.edges):
        return False
    k = int(rng.integers(len(net.edges)))
    src, dst = (int(v) for v in net.edges[k])
    new = net.n_nodes
    net.activation = np.append(net.activation, rng.integers(len(ACTIVATION_NAMES)))
    net.edges = np.concatenate([np.delete(net.edges, k, axis=0), [[src, new], [new, dst]]]).astype(np.int64)
    return True


def add_connection(net: Network, rng: np.random.Generator) -> bool:
    """Connect two previously unconnected nodes, respecting the feed-forward order (Sec. 3, "Add
    Connection"). False when every allowed pair is connected already."""
    free = free_connections(net)
    if not len(free):
        return False
    pair = free[int(rng.integers(len(free)))]
    net.edges = np.concatenate([net.edges, pair[None]]).astype(np.int64)
    return True


def change_activation(net: Network, rng: np.random.Generator) -> bool:
    """Reassign a random hidden node another activation of the set (Sec. 3, "Change Activation").
    False when the network has no hidden node."""
    if net.n_hidden == 0:
        return False
    node = net.n_inputs + net.n_outputs + int(rng.integers(net.n_hidden))
    others = [a for a in range(len(ACTIVATION_NAMES)) if a != net.activation[node]]
    net.activation[node] = others[int(rng.integers(len(others)))]
    return True


MUTATIONS = (insert_node, add_connection, change_activation)


def mutate(net: Network, probs: np.ndarray, max_hidden: int, rng: np.random.Generator) -> Network:
    """A mutated copy: one of the three mutations, drawn with ``probs`` (insert node, add
    connection, change activation); one that cannot apply (no connection to split, the hidden-node
    cap reached, no free pair, no hidden node) passes its turn to the others, renormalised."""
    child = net.copy()
    p = np.asarray(probs, dtype=np.float64).copy()
    if child.n_hidden >= max_hidden:
        p[0] = 0.0
    while p.sum() > 0:
        k = int(rng.choice(len(p), p=p / p.sum()))
        if MUTATIONS[k](child, rng):
            break
        p[k] = 0.0
    return child


def check_network(net: Network, max_hidden: int | None = None) -> str | None:
    """What is wrong with a network, in words, or None: node ids in range, no connection into an
    input or out of an output, no self loop or duplicate, linear inputs and outputs, activations in
    the set, and no cycle."""
    n_io = net.n_inputs + net.n_outputs
    if net.n_nodes < n_io:
        return f"it has {net.n_nodes} nodes, fewer than its {n_io} inputs and outputs"
    if max_hidden is not None and net.n_hidden > max_hidden:
        return f"it has {net.n_hidden} hidden nodes, more than max_hidden_nodes={max_hidden}"
    act = net.activation
    if ((act < 0) | (act >= len(ACTIVATION_NAMES))).any():
        return f"an activation index lies outside [0, {len(ACTIVATION_NAMES) - 1}]"
    if (act[:n_io] != LINEAR).any():
        return "an input or output node is not linear"
    if not len(net.edges):
        return None
    src, dst = net.edges[:, 0], net.edges[:, 1]
    if ((net.edges < 0) | (net.edges >= net.n_nodes)).any():
        return f"a connection names a node outside [0, {net.n_nodes - 1}]"
    if (dst < net.n_inputs).any():
        return "a connection leads into an input"
    if ((src >= net.n_inputs) & (src < n_io)).any():
        return "a connection leaves an output"
    if (src == dst).any():
        return "a connection loops onto its own node"
    if len(np.unique(src * net.n_nodes + dst)) != len(src):
        return "a connection is listed twice"
    try:
        net.depths()
    except ValueError as exc:
        return str(exc)
    return None


class PopulationForward:
    """The forward pass of many networks, each under several values of its shared weight, in one
    set of array operations per depth level.

    Row ``b`` of a batch runs network ``b // R`` with shared weight ``weights[b // R, b % R]``. Every
    row holds its own copy of its network's nodes ("slots"); each connection of each row is an edge
    instance carrying that row's weight (``edge_weight``, ``edge_row``: the record a test reads to
    see that one weight serves every connection of an evaluation). Levels are computed in depth
    order: the weighted sums of a level with one ``bincount``, then each activation on its slice.
    """

    def __init__(self, networks: list[Network], weights: np.ndarray) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        n_rows_each = weights.shape[1]
        self.n_rows = len(networks) * n_rows_each
        self.n_inputs, self.n_outputs = networks[0].n_inputs, networks[0].n_outputs
        offsets, depth, act, src, dst, row = [], [], [], [], [], []
        start = 0
        for g, net in enumerate(networks):
            d = net.depths()
            for r in range(n_rows_each):
                offsets.append(start)
                depth.append(d)
                act.append(net.activation)
                src.append(net.edges[:, 0] + start)
                dst.append(net.edges[:, 1] + start)
                row.append(np.full(net.n_connections, g * n_rows_each + r))
                start += net.n_nodes
        self.n_slots = start
        base = np.array(offsets, dtype=np.int64)[:, None]
        self.input_slots = base + np.arange(self.n_inputs)
        self.output_slots = base + self.n_inputs + np.arange(self.n_outputs)
        self.edge_row = np.concatenate(row).astype(np.int64)
        self.edge_weight = weights.reshape(-1)[self.edge_row]
        self._levels(np.concatenate(depth), np.concatenate(act), np.concatenate(src), np.concatenate(dst))

    def _levels(self, depth: np.ndarray, act: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        self.levels = []
        for level in range(1, int(depth.max()) + 1 if len(depth) else 1):
            slots = np.nonzero(depth == level)[0]
            slots = slots[np.argsort(act[slots], kind="stable")]  # one contiguous slice per activation
            local = np.full(self.n_slots, -1, dtype=np.int64)
            local[slots] = np.arange(len(slots))
            mine = local[dst] >= 0
            groups = []
            acts = act[slots]
            for a in np.unique(acts):
                lo, hi = np.searchsorted(acts, a, "left"), np.searchsorted(acts, a, "right")
                groups.append((ACTIVATION_FUNCS[int(a)], int(lo), int(hi)))
            self.levels.append((slots, src[mine], local[dst[mine]], self.edge_weight[mine], groups))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (n_rows, n_outputs) for inputs (n_rows, n_inputs - 1), the bias appended here."""
        values = np.zeros(self.n_slots)
        values[self.input_slots[:, :-1]] = inputs
        values[self.input_slots[:, -1]] = 1.0
        for slots, src, local, weight, groups in self.levels:
            total = np.bincount(local, weights=weight * values[src], minlength=len(slots))
            out = np.empty_like(total)
            for func, lo, hi in groups:
                out[lo:hi] = func(total[lo:hi])
            values[slots] = out
        return values[self.output_slots]


def pack_networks(networks: list[Network]) -> dict[str, np.ndarray]:
    """Networks as four flat arrays (a checkpoint's form): node and connection counts per network,
    then every network's activations and connections one after the other."""
    return {
        "node_counts": np.array([net.n_nodes for net in networks], dtype=np.int64),
        "edge_counts": np.array([net.n_connections for net in networks], dtype=np.int64),
        "activations": np.concatenate([net.activation for net in networks]).astype(np.int64),
        "edges": np.concatenate([net.edges for net in networks]).astype(np.int64).reshape(-1, 2),
    }


def unpack_networks(arrays: dict[str, np.ndarray], n_inputs: int, n_outputs: int) -> list[Network]:
    """The inverse of :func:`pack_networks`; raises ValueError when the counts do not add up to
    the arrays' lengths (the networks themselves are checked by :func:`check_network`)."""
    nodes, edges = np.asarray(arrays["node_counts"]), np.asarray(arrays["edge_counts"])
    act, conn = np.asarray(arrays["activations"]), np.asarray(arrays["edges"])
    if nodes.sum() != len(act) or edges.sum() != len(conn):
        raise ValueError(
            f"the counts add up to {int(nodes.sum())} nodes and {int(edges.sum())} connections, but the "
            f"arrays hold {len(act)} and {len(conn)}"
        )
    node_at, edge_at = np.concatenate([[0], np.cumsum(nodes)]), np.concatenate([[0], np.cumsum(edges)])
    return [
        Network(
            n_inputs,
            n_outputs,
            act[node_at[i] : node_at[i + 1]].astype(np.int64),
            conn[edge_at[i] : edge_at[i + 1]].astype(np.int64).reshape(-1, 2),
        )
        for i in range(len(nodes))
    ]


def network_json(net: Network, weight: float, score: float) -> str:
    """A network as readable JSON: its nodes with their roles and activations, its connections and
    the one weight they share."""
    import json

    roles = ["input"] * (net.n_inputs - 1) + ["bias"] + ["output"] * net.n_outputs + ["hidden"] * net.n_hidden
    record = {
        "format": "rlcanon-wann-network",
        "shared_weight": weight,
        "mean_return": score if np.isfinite(score) else None,
        "nodes": [
            {"id": i, "role": role, "activation": ACTIVATION_NAMES[int(a)]}
            for i, (role, a) in enumerate(zip(roles, net.activation, strict=True))
        ],
        "connections": net.edges.tolist(),
    }
    return json.dumps(record, indent=1) + "\n"
