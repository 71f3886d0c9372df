"""The gateway's Prometheus metrics (``GET /metrics``), in a registry of its own.

::

    kindling_invocations_total{function,ending}        counter, one per report
    kindling_invocation_duration_seconds{function}     histogram
    kindling_starts_total{function,start}               counter: cold / warm
    kindling_throttled_total{function}                  counter: 429s
    kindling_in_flight{function}                        gauge  } read from the functions
    kindling_queue_depth{function}                      gauge  } when scraped
    kindling_guests_alive{function}                     gauge  }
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .function import Function
from .report import Report

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, functions: Callable[[], Iterable[Function]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.invocations = Counter(
            "kindling_invocations",
            "Invocations by function and ending",
            ["function", "ending"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "kindling_invocation_duration_seconds",
            "Time from a request's arrival at the function to its response",
            ["function"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.starts = Counter(
            "kindling_starts",
            "Invocations by start: cold (a template or pool guest was built) or warm",
            ["function", "start"],
            registry=self.registry,
        )
        self.throttled = Counter(
            "kindling_throttled",
            "Requests refused with 429 (limit and queue full)",
            ["function"],
            registry=self.registry,
        )
        self.registry.register(_Live(functions))
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}

    def record(self, report: Report) -> None:
        key = (report.function, report.ending, report.start)
        children = self._children.get(key)
        if children is None:
            # ``labels()`` looks its child up each time; kept here, a report costs a third.
            function, ending, start = key
            later = (
                self.throttled.labels(function)
                if ending == "throttled"
                else self.starts.labels(function, start)
            )
            children = self._children[key] = (
                self.invocations.labels(function, ending),
                self.duration.labels(function),
                later,
            )
        invocations, duration, later = children
        invocations.inc()
        duration.observe(report.duration_ms / 1000)
        later.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Live(Collector):
    """Gauges read from the functions at scrape time."""

    def __init__(self, functions: Callable[[], Iterable[Function]]) -> None:
        self._functions = functions

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "kindling_in_flight", "Requests being served", labels=["function"]
        )
        queued = GaugeMetricFamily(
            "kindling_queue_depth", "Requests waiting for a slot", labels=["function"]
        )
        alive = GaugeMetricFamily(
            "kindling_guests_alive", "Guest processes alive", labels=["function"]
        )
        for function in self._functions():
            in_flight.add_metric([function.name], function.gate.in_flight)
            queued.add_metric([function.name], function.gate.waiting)
            alive.add_metric([function.name], len(function.guests()))
        yield in_flight
        yield queued
        yield alive
