"""``verk-actors tree``: the live supervision tree of a running node, or the design.

It finds the node in Redis (its admin port is in ``verk:node:<id>:info``), joins the
node's actor system on this host, and asks its VerkRoot to describe the tree: every
actor, its pid, state, strategy and restarts. ``--format mermaid`` or ``dot`` print
the same tree as the source ``diagrams/`` is drawn from; ``--design`` prints the tree
every node builds, without asking one.
"""

from __future__ import annotations

import argparse
from typing import Any

from verk_actors.actors.messages import DescribeTree, TreeNode
from verk_actors.actors.system import attach, root_of
from verk_actors.actors.tree import FORMATS, design_tree, render
from verk_actors.cli.common import EXIT_NOT_FOUND, EXIT_OK, add_common, connected, warn
from verk_actors.errors import ActorSystemError, NotFoundError
from verk_actors.store.admin.nodes import list_nodes

ASK_TIMEOUT = 10.0

DESCRIPTION = """\
The live supervision tree of a running node, or the design.

It finds the node in Redis (its admin port is in verk:node:<id>:info), joins the
node's actor system on this host, and asks its VerkRoot to describe the tree: every
actor, its pid, state, strategy and restarts. --format mermaid or dot print the same
tree as the sources in diagrams/ are drawn from; --design prints the tree every node
builds, without asking one.
"""


def add_parser(commands: Any) -> None:
    """Add ``tree``."""
    parser = commands.add_parser(
        "tree",
        help="the live supervision tree of a running node",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--node", metavar="ID", help="which node (default: the only live one)")
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), mermaid or dot"
    )
    parser.add_argument("--design", action="store_true", help="the designed tree; no node needed")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the tree."""
    if args.design:
        print(render(design_tree(), args.format), end="")
        return EXIT_OK
    with connected(args) as client:
        live = [n for n in list_nodes(client) if n.alive]
    if args.node:
        live = [n for n in live if n.node_id == args.node]
    if not live:
        raise NotFoundError(
            f"no live node {args.node!r}" if args.node else "no live node uses this Redis"
        )
    if len(live) > 1:
        names = ", ".join(n.node_id for n in live)
        warn(f"several live nodes ({names}); showing {live[0].node_id}, choose with --node")
    node = live[0]
    if not node.admin_port:
        raise ActorSystemError(f"node {node.node_id} did not publish its admin port")
    asys = attach(node.admin_port)
    reply = asys.ask(root_of(asys), DescribeTree(1, "root"), ASK_TIMEOUT)
    if not isinstance(reply, TreeNode):
        warn(f"node {node.node_id} did not describe its tree (got {reply!r})")
        return EXIT_NOT_FOUND
    print(render(reply, args.format), end="")
    return EXIT_OK
