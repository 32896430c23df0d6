"""Per-call counters and histograms cheap enough for every call.

prometheus_client's Counter and Histogram take a lock on every increment and walk the bucket
list one bound at a time: about 4 µs an observation, 25 µs a call over the facade's and the
worker's, which the benchmark saw (8% of throughput). The facade and the workers record a call
from one thread (their event loop), so these keep plain numbers, find a bucket by bisection,
and hand prometheus_client finished metric families when scraped. A scrape from another
thread (a worker's metrics port) may see one call counted in a bucket before its sum: a
sampling skew no dashboard can tell from timing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector


class CounterSeries:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HistogramSeries:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # A value on a bound belongs to that bound's bucket (Prometheus' `le`).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class _Labeled(Collector):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)

    def describe(self) -> Iterable[Metric]:
        return list(self._families({}))

    def _families(self, series: dict[tuple[str, ...], object]) -> Iterator[Metric]:
        raise NotImplementedError


class LabeledCounter(_Labeled):
    """A counter with labels; `child(*values)` once, then `.inc()` on every call."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels)
        self._series: dict[tuple[str, ...], CounterSeries] = {}

    def child(self, *values: str) -> CounterSeries:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = CounterSeries()
        return series

    def collect(self) -> Iterable[Metric]:
        return self._families(dict(self._series))

    def _families(self, series: dict[tuple[str, ...], object]) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, counter in sorted(series.items()):
            assert isinstance(counter, CounterSeries)
            family.add_metric(list(values), counter.value)
        yield family


class LabeledHistogram(_Labeled):
    """A histogram with labels; `child(*values)` once, then `.observe(x)` on every call."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labels)
        self.bounds = tuple(sorted(float(bound) for bound in buckets))
        self._series: dict[tuple[str, ...], HistogramSeries] = {}

    def child(self, *values: str) -> HistogramSeries:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = HistogramSeries(self.bounds)
        return series

    def collect(self) -> Iterable[Metric]:
        return self._families(dict(self._series))

    def _families(self, series: dict[tuple[str, ...], object]) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, histogram in sorted(series.items()):
            assert isinstance(histogram, HistogramSeries)
            counts = list(histogram.counts)
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else _bound(bound), cumulative))
            family.add_metric(list(values), buckets, histogram.sum)
        yield family


def _bound(bound: float) -> str:
    """A bucket bound as Prometheus clients write it (0.5, 1.0, 300.0)."""
    return repr(float(bound))


def redis_trouble_counters(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """The Redis errors and reconnects counters, the same in the facade and the workers."""
    errors = Counter("toolq_redis_errors", "Redis commands that failed.", ["component"], registry=registry)
    reconnects = Counter(
        "toolq_redis_reconnects",
        "Connections to Redis made again after one was lost.",
        ["component"],
        registry=registry,
    )
    return errors, reconnects
