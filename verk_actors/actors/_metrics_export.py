"""The node's figures in Prometheus' text format (``prometheus-client`` builds it).

Imported only by the MetricsActor when it answers a scrape, so a node without the
``metrics`` extra never imports ``prometheus_client``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import attrs
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from verk_actors.actors._metrics_tally import BUCKETS, WORKER_KIND, NodeTally
from verk_actors.store.admin.metrics import RedisFigures

CONTENT_TYPE = CONTENT_TYPE_LATEST


@attrs.frozen
class NodeInfo:
    """The labels of ``verk_node_info``."""

    version: str
    node_id: str
    thespian_base: str


class _Families:
    """A collector that hands out families made beforehand (one registry per scrape)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _jobs(tally: NodeTally) -> Iterable[Metric]:
    jobs = CounterMetricFamily(
        "verk_jobs",
        "Jobs run on this node by queue, worker class and outcome: processed (every run, "
        "as stat:processed), failed (every failed try), retried or dead (what became of "
        "each failure)",
        labels=["queue", "class", "outcome"],
    )
    durations = HistogramMetricFamily(
        "verk_job_duration_seconds",
        "Run time of jobs by queue and worker class",
        labels=["queue", "class"],
    )
    killed = CounterMetricFamily(
        "verk_workers_killed",
        "Worker processes that ended in a job: timeout (killed at its time limit), died "
        "(crashed or killed from outside), stopped (still running at shutdown)",
        labels=["queue", "reason"],
    )
    restarts = CounterMetricFamily(
        "verk_restarts",
        "Actors started again by their supervisor after they died, by actor kind and queue",
        labels=["kind", "queue"],
    )
    recycled = CounterMetricFamily(
        "verk_workers_recycled",
        "Worker processes replaced between jobs after their queue's max_jobs or max_memory",
        labels=["queue"],
    )
    workers = GaugeMetricFamily(
        "verk_workers",
        "Workers of each queue on this node: busy (running a batch of jobs; a worker "
        "waiting on an idle queue is not) and total",
        labels=["queue", "state"],
    )
    for queue in tally.counted_queues():
        sums = tally.totals(queue)
        for (class_name, outcome), count in sorted(sums.jobs.items()):
            jobs.add_metric([queue, class_name, outcome], count)
        for class_name, (counts, total, _) in sorted(sums.durations.items()):
            bounds = [*(repr(float(b)) for b in BUCKETS), "+Inf"]
            cumulative = list(itertools.accumulate(counts))
            durations.add_metric(
                [queue, class_name], list(zip(bounds, cumulative, strict=True)), total
            )
        for reason, count in sorted(sums.killed.items()):
            killed.add_metric([queue, reason], count)
        if sums.replaced:
            restarts.add_metric([WORKER_KIND, queue], sums.replaced)
        if sums.recycled:
            recycled.add_metric([queue], sums.recycled)
        shown = tally.workers(queue)
        if shown is not None:
            workers.add_metric([queue, "busy"], shown[0])
            workers.add_metric([queue, "total"], shown[1])
    for (kind, queue), count in sorted(tally.restarts.items()):
        restarts.add_metric([kind, queue], count)
    return (jobs, durations, workers, restarts, killed, recycled)


def _redis(figures: RedisFigures | None) -> Iterable[Metric]:
    size = GaugeMetricFamily(
        "verk_queue_size", "Jobs waiting in each queue this node works on", labels=["queue"]
    )
    latency = GaugeMetricFamily(
        "verk_queue_latency_seconds",
        "Seconds since the oldest waiting job of each queue was enqueued",
        labels=["queue"],
    )
    sets = GaugeMetricFamily(
        "verk_set_size", "Jobs in the retry, scheduled and dead sets", labels=["set"]
    )
    if figures is not None:
        for queue, pending, seconds in figures.queues:
            size.add_metric([queue], pending)
            latency.add_metric([queue], seconds)
        for name, count in figures.sets:
            sets.add_metric([name], count)
    return (size, latency, sets)


REDIS_ACTORS = ("queue_manager", "node_manager", "schedule_manager", "metrics")
"""The kinds of actor that report Redis errors (each always has a sample; ``metrics``:
the scrapes' own reads)."""


def render(tally: NodeTally, figures: RedisFigures | None, info: NodeInfo) -> bytes:
    """The scrape's body: every family, Redis's figures left out if it did not answer."""
    errors = CounterMetricFamily(
        "verk_redis_errors",
        "Redis calls that failed in this node's managers, by kind of actor",
        labels=["actor"],
    )
    reconnects = CounterMetricFamily(
        "verk_redis_reconnects",
        "Redis outages this node's managers came back from, by kind of actor",
        labels=["actor"],
    )
    for actor in REDIS_ACTORS:
        errors.add_metric([actor], tally.redis_errors.get(actor, 0))
        reconnects.add_metric([actor], tally.redis_reconnects.get(actor, 0))
    up = GaugeMetricFamily("verk_redis_up", "1 if Redis answered this scrape, else 0")
    up.add_metric([], 0 if figures is None else 1)
    node = GaugeMetricFamily(
        "verk_node_info", "This node (always 1)", labels=["version", "node_id", "thespian_base"]
    )
    node.add_metric([info.version, info.node_id, info.thespian_base], 1)
    families: list[Metric] = [
        *_jobs(tally),
        *_redis(figures),
        errors,
        reconnects,
        up,
        node,
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)
