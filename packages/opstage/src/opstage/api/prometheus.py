"""Prometheus exposition: HTTP metrics recorded per request, state collected at scrape time.

Each application gets its own registry (never the library's global one), so several apps in
one process — tests, the OpenAPI build — do not collide. The request path records into cached
label children: one dict lookup, one counter increment and one histogram observation, no
allocation once a (method, route, status) combination has been seen.

Fleet state (agents, services, commands, tokens, Capsule Bus events) is read from the database
when Prometheus scrapes, through one use case, so it is the same on every node and never
drifts from what the console shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from opstage import __version__
from opstage.app.observability import PrometheusSnapshot
from opstage.app.pauses import LAG_BUCKETS, PauseStats

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds; the heartbeat and poll paths live in the first few buckets, long-polls in the last.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "opstage_http_requests",
            "HTTP requests handled, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "opstage_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str | None, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        key = (method, route, status)
        pair = self._children.get(key)
        if pair is None:
            m = method if method in KNOWN_METHODS else "OTHER"
            r = route or UNMATCHED_ROUTE  # never the raw path: it would explode cardinality
            pair = (self.requests.labels(m, r, str(status)), self.latency.labels(m, r))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)


class SnapshotCollector(Collector):
    """Turns one :class:`PrometheusSnapshot` into metric families."""

    def __init__(self, snap: PrometheusSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        info = GaugeMetricFamily(
            "opstage_build_info", "Opstage version (always 1).", labels=["version", "edition"]
        )
        info.add_metric([__version__, "ce"], 1)
        yield info

        def by_status(name: str, doc: str, values: dict[str, int]) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, n in sorted(values.items()):
                family.add_metric([status], n)
            return family

        yield by_status(
            "opstage_agents", "Agents by effective status (as the console shows them).", s.agents
        )
        yield by_status(
            "opstage_capsule_services",
            "Capsule Services by effective status.",
            s.services,
        )
        yield by_status(
            "opstage_registration_tokens", "Registration tokens by effective status.", s.tokens
        )
        commands = GaugeMetricFamily(
            "opstage_commands",
            "Commands in the database by type and status (terminal statuses are the outcome).",
            labels=["type", "status"],
        )
        for (type_, status), n in sorted(s.commands.items()):
            commands.add_metric([type_, status], n)
        yield commands
        bus = GaugeMetricFamily(
            "opstage_capsule_bus_events",
            "Capsule Bus events stored, by kind (accepted or dry run).",
            labels=["kind"],
        )
        for kind in ("accepted", "dryRun"):
            bus.add_metric([kind], s.bus_events.get(kind, 0))
        yield bus
        yield CounterMetricFamily(
            "opstage_domain_events_published",
            "Domain events published on the in-process bus since start.",
            value=s.bus_published,
        )
        yield CounterMetricFamily(
            "opstage_domain_events_dropped",
            "Domain events dropped for lagging subscribers since start (they backfill).",
            value=s.bus_dropped,
        )
        yield GaugeMetricFamily(
            "opstage_domain_event_bus_max_lag",
            "Largest number of events waiting in one subscriber's buffer.",
            value=s.bus_max_lag,
        )
        yield GaugeMetricFamily(
            "opstage_domain_event_bus_subscribers",
            "Subscribers of the domain event bus (live streams included).",
            value=s.bus_subscribers,
        )
        yield GaugeMetricFamily(
            "opstage_event_log_last_id",
            "Id of the newest durable domain event (the live stream's resume point).",
            value=s.event_log_last_id,
        )
        yield CounterMetricFamily(
            "opstage_agent_command_polls",
            "Agent command polls since start.",
            value=s.agent_command_polls,
        )
        yield CounterMetricFamily(
            "opstage_command_results_oversized",
            "Command results rejected for exceeding OPSTAGE_COMMAND_RESULT_MAX_BYTES since start.",
            value=s.oversized_results_rejected,
        )
        yield CounterMetricFamily(
            "opstage_action_prepare_timeouts",
            "Action prepare requests that timed out waiting for the agent since start.",
            value=s.action_prepare_timeouts,
        )
        yield CounterMetricFamily(
            "opstage_heartbeat_batches",
            "Group-commit transactions of agent contact since start.",
            value=s.heartbeat_batches,
        )
        yield CounterMetricFamily(
            "opstage_heartbeat_contacts",
            "Agent contacts (heartbeats, polls) recorded since start.",
            value=s.heartbeat_contacts,
        )
        yield CounterMetricFamily(
            "opstage_bus_ingest_batches",
            "Group-commit transactions of Capsule Bus publishes since start.",
            value=s.bus_ingest_batches,
        )
        yield CounterMetricFamily(
            "opstage_bus_ingest_events",
            "Capsule Bus publishes those transactions carried (replays and refusals included).",
            value=s.bus_ingest_events,
        )
        yield CounterMetricFamily(
            "opstage_bus_ingest_fallbacks",
            "Bus batches the database refused, replayed event by event since start.",
            value=s.bus_ingest_fallbacks,
        )
        yield GaugeMetricFamily(
            "opstage_uptime_seconds", "Seconds since this process started.", value=s.uptime_seconds
        )
        lag = GaugeMetricFamily(
            "opstage_topic_subscription_lag",
            "Messages a durable topic subscription has not committed, per partition.",
            labels=["topic", "subscription", "partition"],
        )
        for (topic, name, partition), value in sorted(s.topic_lag.items()):
            lag.add_metric([topic, name, str(partition)], value)
        yield lag
        yield from _pauses(s.pauses)


def _pauses(p: PauseStats) -> Iterator[Metric]:
    """The collector's passes and the loop's lag (app/pauses.py, ADR 0019)."""
    passes = CounterMetricFamily(
        "opstage_gc_pause_seconds",
        "Time the cyclic garbage collector stopped this process, by generation, since start.",
        labels=["generation"],
    )
    longest = GaugeMetricFamily(
        "opstage_gc_pause_max_seconds",
        "Longest pass of the cyclic garbage collector since start, by generation.",
        labels=["generation"],
    )
    count = CounterMetricFamily(
        "opstage_gc_passes",
        "Passes of the cyclic garbage collector since start.",
        labels=["generation"],
    )
    for g in range(len(p.gc_passes)):
        passes.add_metric([str(g)], p.gc_seconds[g])
        longest.add_metric([str(g)], p.gc_max_seconds[g])
        count.add_metric([str(g)], p.gc_passes[g])
    yield passes
    yield longest
    yield count
    buckets: list[tuple[str, float]] = []
    seen = 0
    for bound, n in zip((*LAG_BUCKETS, math.inf), p.lag_counts, strict=True):
        seen += n
        buckets.append(("+Inf" if bound == math.inf else repr(bound), seen))
    lag = HistogramMetricFamily(
        "opstage_event_loop_lag_seconds",
        "How late the event loop ran a timer due every 0.1 s: time every request waited for "
        "the loop.",
        buckets=buckets,
        sum_value=p.lag_seconds,
    )
    yield lag


class PrometheusMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` twin per counter series: noise at scrape
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = HttpMetrics(self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def render(self, snap: PrometheusSnapshot) -> bytes:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(SnapshotCollector(snap))
        return generate_latest(self.registry) + generate_latest(scrape)
