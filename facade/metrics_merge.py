"""Several processes' metrics as one: the text formats of a facade's processes, summed.

A facade started with TOOLQ_FACADE_PROCESSES runs several processes on one port; a scrape
reaches one of them, which answers for all: counters, histograms and the live gauges
(calls in flight, tasks followed) add up across processes, and a `_created` timestamp is the
earliest of them. Only what each process counts itself goes through here; what every process
reads from Redis (the pool figures) is added once, after.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def merge_expositions(texts: list[bytes]) -> bytes:
    """The text formats in `texts` as one, every series summed over them (`_created`: the
    earliest). Families keep the order they first appear in."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))  # one producer: one label order
                if key not in series:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(series[key], sample.value)
                else:
                    series[key] += sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in values[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    return generate_latest(registry)
