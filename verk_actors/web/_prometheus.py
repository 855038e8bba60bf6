"""``/metrics`` of the dashboard: the cluster-wide figures in Prometheus' text format.

A node's own ``--metrics-port`` shows what that node ran (by class, durations,
restarts); this shows what Redis knows of the whole cluster, whichever nodes are up:
the counters of ``stat:*``, queue sizes, latency and pause, the retry, schedule and
dead sets, and the processes (verk_actors nodes and Sidekiq) with their busy and
total workers. One scrape costs the reads of ``verk-actors stats`` (a few pipelined
round trips, no scan of any queue or set).

Needs ``prometheus-client`` (``pip install 'verk_actors[web]'`` brings it).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from verk_actors.store.admin.processes import ProcessInfo, list_processes
from verk_actors.store.admin.stats import QueueStats, Totals, queue_stats, totals
from verk_actors.store.connection import Connection

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _families(
    total: Totals, queues: list[QueueStats], processes: list[ProcessInfo]
) -> Iterator[Metric]:
    jobs = CounterMetricFamily(
        "verk_cluster_jobs",
        "Executions and failed tries of every node on this Redis (stat:processed, stat:failed)",
        labels=["outcome"],
    )
    jobs.add_metric(["processed"], total.processed)
    jobs.add_metric(["failed"], total.failed)
    yield jobs
    queue_jobs = CounterMetricFamily(
        "verk_cluster_queue_jobs",
        "Executions and failed tries per queue (stat:processed:<q>, stat:failed:<q>)",
        labels=["queue", "outcome"],
    )
    size = GaugeMetricFamily("verk_cluster_queue_size", "Jobs waiting per queue", labels=["queue"])
    latency = GaugeMetricFamily(
        "verk_cluster_queue_latency_seconds",
        "Seconds since the oldest waiting job of each queue was enqueued",
        labels=["queue"],
    )
    running = GaugeMetricFamily(
        "verk_cluster_queue_in_progress",
        "Jobs of each queue taken by a verk_actors node and not yet acked",
        labels=["queue"],
    )
    paused = GaugeMetricFamily(
        "verk_cluster_queue_paused", "1 if the queue is paused cluster-wide", labels=["queue"]
    )
    for queue in queues:
        queue_jobs.add_metric([queue.name, "processed"], queue.processed)
        queue_jobs.add_metric([queue.name, "failed"], queue.failed)
        size.add_metric([queue.name], queue.size)
        latency.add_metric([queue.name], queue.latency)
        running.add_metric([queue.name], queue.in_progress)
        paused.add_metric([queue.name], int(queue.paused))
    yield from (queue_jobs, size, latency, running, paused)
    sets = GaugeMetricFamily(
        "verk_cluster_set_size", "Jobs in the retry, scheduled and dead sets", labels=["set"]
    )
    sets.add_metric(["retry"], total.retries)
    sets.add_metric(["scheduled"], total.scheduled)
    sets.add_metric(["dead"], total.dead)
    yield sets
    counts = GaugeMetricFamily(
        "verk_cluster_processes",
        "Live processes by kind (verk_actors nodes, Sidekiq processes) and state",
        labels=["kind", "state"],
    )
    workers = GaugeMetricFamily(
        "verk_cluster_workers",
        "Workers of the live processes: busy and total (concurrency)",
        labels=["kind", "state"],
    )
    for kind in ("verk_actors", "sidekiq"):
        mine = [p for p in processes if (p.verk if kind == "verk_actors" else not p.verk)]
        counts.add_metric([kind, "running"], sum(not p.quiet for p in mine))
        counts.add_metric([kind, "quiet"], sum(p.quiet for p in mine))
        workers.add_metric([kind, "busy"], sum(p.busy for p in mine))
        workers.add_metric([kind, "total"], sum(p.concurrency or 0 for p in mine))
    yield from (counts, workers)


class _Collector:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def render(client: Connection) -> bytes:
    """The scrape's body, read from Redis now (Redis errors raise: the app answers 503)."""
    families = list(_families(totals(client), queue_stats(client), list_processes(client)))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families))
    return generate_latest(registry)
