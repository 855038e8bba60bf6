"""What sealing and checking a frame's MAC costs per message, against pickling alone.

``python -m tests.benchmarks.frame_mac`` times, for a drain's typical messages (a batch of
jobs handed to a worker, its report), Thespian's own framing (pickle, length prefix,
unpickle) with and without ``thespian_fixes``' HMAC-SHA256, and prints microseconds per
message and the ratio. Best of several rounds, so a busy neighbour shows less.
"""

from __future__ import annotations

import argparse
import json
import pickle
import timeit
from typing import Any

from thespian.actors import ActorAddress
from thespian.system.transport.IPBase import TCPv4ActorAddress
from thespian.system.transport.streamBuffer import toSendBuffer

from verk_actors.actors import _thespian as thespian_fixes
from verk_actors.actors._keyring import node_key, seal
from verk_actors.actors.messages import JobsDone, RunJobs


def job(n: int) -> bytes:
    """A job text as Redis holds it (each its own object: pickle would share equal ones)."""
    fields = {
        "class": "Noop",
        "args": [n, "two"],
        "jid": f"{n:024x}",
        "queue": "default",
        "retry": True,
        "created_at": 1795810689.123,
        "enqueued_at": 1795810689.125,
    }
    return json.dumps(fields).encode()


def messages() -> dict[str, Any]:
    """A drain's messages: batches of 1, 40 and 400 jobs, and a report of 40."""
    return {
        "RunJobs x1": RunJobs(1, ((0, job(0)),)),
        "RunJobs x40": RunJobs(1, tuple((i, job(i)) for i in range(40))),
        "RunJobs x400": RunJobs(1, tuple((i, job(i)) for i in range(400))),
        "JobsDone x40": JobsDone(1, tuple(range(40)), 0.01, (), True),
    }


def plain_round_trip(envelope: Any) -> Any:
    data = toSendBuffer(envelope, pickle.dumps)
    return pickle.loads(data[data.index(b">") + 1 :])


def sealed_round_trip(envelope: Any) -> Any:
    key = node_key(None)
    data = toSendBuffer(envelope, lambda e: seal(key, pickle.dumps(e)))
    return thespian_fixes.open_frame(data[data.index(b">") + 1 :])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=1000)
    args = parser.parse_args(argv)
    sender = ActorAddress(TCPv4ActorAddress("127.0.0.1", 40000, external=True))
    header = ("message", "bytes", "plain µs", "sealed µs", "MAC µs", "ratio")
    print("{:<14} {:>7} {:>9} {:>10} {:>7} {:>6}".format(*header))
    for name, message in messages().items():
        envelope = (sender, message)
        size = len(pickle.dumps(envelope))
        plain = (
            min(
                timeit.repeat(
                    lambda e=envelope: plain_round_trip(e), number=args.number, repeat=args.rounds
                )
            )
            / args.number
            * 1e6
        )
        sealed = (
            min(
                timeit.repeat(
                    lambda e=envelope: sealed_round_trip(e), number=args.number, repeat=args.rounds
                )
            )
            / args.number
            * 1e6
        )
        print(
            f"{name:<14} {size:>7} {plain:>9.2f} {sealed:>10.2f} {sealed - plain:>7.2f} "
            f"{sealed / plain:>6.2f}"
        )


if __name__ == "__main__":
    main()
