"""Mixed hardware in one ray run: which node types it measures on, and on which type each
trial of a commit runs (docs/ray.md#mixed-hardware).

A node type is a custom resource of the cluster's nodes (`accelerator_type:H100`, or
one a KubeRay worker group declares); a trial that requires a little of it runs on such
a node, and the type is part of the trial's fingerprint. With one type the run is
pinned to it (or, with none named, to whatever node runs its trials). With several,
each *candidate* is pinned to one type (new ones in turn, so every type measures), and
the *references* of a comparison (the range's ends a candidate is judged against, the
parent in a verification) are measured on the type of the candidate being judged: the
judge only ever sees trials of one fingerprint side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

#: Ray declares `accelerator_type:<model>` on every GPU node by itself.
ACCELERATOR_PREFIX = "accelerator_type:"

#: A node type: a custom resource's name; None: unpinned (any node of the trial's shape).
NodeType = str | None


def run_node_types(
    node_type: str | None,
    node_types: Iterable[str],
    cluster: Mapping[str, float],
    resources: Iterable[str] = (),
) -> list[NodeType]:
    """The node types of a run: the one named, the several named, else every accelerator
    type of the cluster when it has more than one (unless the trial's `resources` already
    ask for one), else one unpinned kind."""
    if node_type:
        return [node_type]
    named = list(node_types)
    if named:
        return list(named)
    if any(r.startswith(ACCELERATOR_PREFIX) for r in resources):
        return [None]
    found = sorted(k for k in cluster if k.startswith(ACCELERATOR_PREFIX))
    return list(found) if len(found) > 1 else [None]


class Pins:
    """Which node type a commit's trials are taken and read on (see the module docstring).

    `view` is the type of the comparison the hunt is making now (the candidate's; the
    first type while the endpoints are reproduced), `refs` the commits it is judged
    against: their trials are read on the view's type; any other pinned commit's on its
    own type, and the rest (isolation's states, say) on the view's.
    """

    def __init__(self, types: list[NodeType]) -> None:
        self.types = types
        self.view: NodeType = types[0]
        self.refs: frozenset[str] = frozenset()
        self._pins: dict[str, NodeType] = {}
        self._turn = 0

    @property
    def mixed(self) -> bool:
        return len(self.types) > 1

    def pin(self, sha: str, journaled: Callable[[NodeType], int]) -> NodeType:
        """`sha`'s type: kept once chosen; on resume the type holding most of its trials;
        else the next type in turn."""
        if sha not in self._pins:
            counts = {t: journaled(t) for t in self.types} if self.mixed else {}
            best = max(self.types, key=lambda t: counts.get(t, 0))
            if self.mixed and counts[best] == 0:
                best = self.types[self._turn % len(self.types)]
                self._turn += 1
            self._pins[sha] = best
        return self._pins[sha]

    def pinned(self, sha: str) -> NodeType:
        return self._pins.get(sha, self.view)

    def type_for(self, sha: str) -> NodeType:
        """The type `sha`'s trials are read and taken on now."""
        return self.view if sha in self.refs else self.pinned(sha)
