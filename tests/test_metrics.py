"""The facade's /metrics in the fast suite: what one call records, and who may read it."""

from __future__ import annotations

from mcp_http import McpHttp
from prometheus_client.parser import text_string_to_metric_families

from facade.status import bucket_percentile
from workers import contract


async def scrape(client: McpHttp, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_tool_call_is_counted_timed_and_split(mcp: McpHttp):
    before = await scrape(mcp)
    assert (await mcp.call("add", {"a": 1, "b": 2}))["structuredContent"]["sum"] == 3
    bad = await mcp.call("add", {"a": 1})
    assert bad["isError"] is True
    after = await scrape(mcp)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("toolq_calls_total", tool="add", era="handshake", outcome="ok") == 1
    assert grew("toolq_calls_total", tool="add", era="handshake", outcome="invalid_arguments") == 1
    operation = {
        "mcp_method_name": "tools/call",
        "gen_ai_tool_name": "add",
        "mcp_protocol_version": "2025-11-25",
    }
    assert grew("mcp_server_operation_duration_seconds_count", error_type="", **operation) == 1
    assert grew("mcp_server_operation_duration_seconds_count", error_type="tool_error", **operation) == 1
    for split in ("queue_wait", "run", "delivery"):
        assert grew(f"toolq_call_{split}_seconds_count", tool="add") == 1  # the call that ran
    (pool,) = [
        dict(labels)["pool"]
        for name, labels in after
        if name == "toolq_tool_workers" and ("tool", "add") in labels
    ]
    assert value(after, "toolq_tool_workers", tool="add", pool=pool) >= 1
    assert value(after, "toolq_pool_workers", pool=pool) >= 1
    assert value(after, "toolq_pool_jobs_waiting", pool=pool) == 0


async def test_an_unknown_tool_is_its_own_outcome(mcp: McpHttp):
    before = await scrape(mcp)
    _, body, _ = await mcp.post(
        {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    )
    assert body["error"]["code"] == -32602
    after = await scrape(mcp)
    labels = {"tool": "nope", "era": "handshake", "outcome": "unknown_tool"}
    assert value(after, "toolq_calls_total", **labels) - value(before, "toolq_calls_total", **labels) == 1


async def test_metrics_need_the_token_when_tokens_are_set(make_facade, start_worker):
    await start_worker()
    client = await make_facade(tokens=("ops:s3cret",))
    assert (await client.client.get("/metrics")).status == 401
    samples = await scrape(client, Authorization="Bearer s3cret")
    assert ("toolq_calls_in_flight", ()) in samples


async def test_metrics_can_be_turned_off(make_facade, start_worker):
    await start_worker()
    client = await make_facade(metrics=False)
    await client.initialize()
    await client.call("add", {"a": 1, "b": 1})
    samples = await scrape(client)
    assert not [key for key in samples if key[0] == "toolq_calls_total"]


def test_percentiles_come_from_the_bucket_upper_bounds():
    counts = [0] * (len(contract.STATS_BUCKETS_MS) + 1)
    counts[2] = 90  # 90 calls took 2-5 ms
    counts[6] = 10  # 10 took 50-100 ms
    assert bucket_percentile(counts, 0.5) == 5.0
    assert bucket_percentile(counts, 0.95) == 100.0
    assert bucket_percentile([0] * len(counts), 0.5) is None
    counts[-1] = 1000  # beyond the last bound
    assert bucket_percentile(counts, 0.99) is None
