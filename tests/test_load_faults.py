"""Faults under load, on real processes: a real redis-server, facade and worker subprocesses.

Workers stopped one after another (SIGTERM) while calls pour in, a facade SIGKILLed mid-load
next to another on the same Redis, a burst far beyond what a pool can hold, large results next
to small calls on the one events channel, and a soak of tens of thousands of calls. Executions
are counted through a side channel, the ledger the `tallied` tools write
(tests/tools_for_tests.py), never through toolq's own bookkeeping.

With `-s` they print their figures, to be quoted: burst counts and refusal latencies, soak
time and the facade's memory.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis as redis_sync
from real_processes import ROOT, Service, Stack, running_stack, wait_until
from tools_for_tests import read_ledger

from workers import contract

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

PYTHON_PATH = str(ROOT / "tests")


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """One seed-format call as its caller saw it."""

    status: int
    body: dict[str, Any]
    retry_after: str | None
    #: From sending the request to having read the whole answer.
    seconds: float
    #: When the answer was read (time.monotonic()).
    at: float
    #: When the request went out, its connection made (a session made with traced=True).
    sent: float | None = None

    @property
    def seconds_after_sending(self) -> float:
        """The answer's wait without the client's own connecting (when traced)."""
        return self.at - self.sent if self.sent is not None else self.seconds


async def post(session: aiohttp.ClientSession, url: str, tool: str, params: dict[str, Any]) -> Answer:
    marks: dict[str, float] = {}
    started = time.monotonic()
    payload = {"tool": tool, "params": params}
    async with session.post(url, json=payload, trace_request_ctx=marks) as response:
        body = await response.json()
        ended = time.monotonic()
        retry_after = response.headers.get("Retry-After")
        return Answer(response.status, body, retry_after, ended - started, ended, marks.get("sent"))


async def _headers_sent(_session: Any, context: Any, _params: Any) -> None:
    if isinstance(context.trace_request_ctx, dict):
        context.trace_request_ctx["sent"] = time.monotonic()


def client_session(timeout: float = 90, *, traced: bool = False) -> aiohttp.ClientSession:
    """A session with no connection limit: every concurrent call has its own connection.
    `traced`: answers say when their request went out (Answer.sent)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_sent)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=timeout),
        trace_configs=[trace] if traced else None,
    )


def start_worker(stack: Stack, name: str, tools: str, pool: str, **env: str) -> Service:
    return stack.worker(
        name,
        "--tools",
        tools,
        "--pool",
        pool,
        "--tool-modules",
        "tools_for_tests,result_tools",
        PYTHONPATH=PYTHON_PATH,
        **env,
    )


async def registered(stack: Stack, *services: Service) -> None:
    """Until these workers are live in the registry; one that died fails with its log.
    (stack.wait_for_workers wants every service of the stack alive: not so once one was stopped.)"""

    def ready() -> bool:
        for service in services:
            assert service.alive(), log_of(service)
        return {service.name for service in services} <= stack.live_workers()

    await asyncio.to_thread(wait_until, ready, 30, f"workers {[s.name for s in services]} to register")


def log_of(service: Service) -> str:
    """A service's output so far, also once it has stopped (Service.output needs its log open)."""
    return service.log_path.read_text(errors="replace")


def rss_mb(service: Service) -> float:
    """The process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {service.name}")


def idle_queue(redis_url: str, pool: str) -> bool:
    """Nothing queued in the pool and no job held by any worker."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        queued = client.zcard(contract.queue_name(pool))
        held = client.keys(contract.IN_PROGRESS_KEY_PREFIX + "*")
        return queued == 0 and not held
    finally:
        client.close()


def ran_not_exactly_once(ledger: dict[str, dict[str, int]], calls: list[str]) -> dict[str, Any]:
    """The calls among `calls` that did not start exactly once and end exactly once."""
    return {
        call: ledger.get(call, {"start": 0, "end": 0})
        for call in calls
        if ledger.get(call) != {"start": 1, "end": 1}
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def tallied_ok(answer: Answer, call: str) -> bool:
    return answer.status == 200 and answer.body.get("result", {}).get("call") == call


# --- 1. rolling SIGTERM under load -----------------------------------------------------------


async def test_a_rolling_restart_under_load_loses_and_repeats_nothing(tmp_path: Path):
    """Three workers of a pool, each SIGTERMed in turn (and replaced) while 30 callers keep
    calls coming: every call is answered with its own result, every one ran exactly once (the
    ones running on a stopping worker finish there within its drain), and every stopped worker
    exits cleanly."""
    ledger = tmp_path / "ledger"
    at_least = 400
    callers = 30
    with running_stack(tmp_path, TOOLQ_CONCURRENCY="20", TOOLQ_DRAIN_SECONDS="5") as stack:
        _, url = stack.facade()
        originals = [start_worker(stack, f"roll-{i}", "tallied", "roll") for i in range(3)]
        await registered(stack, *originals)

        answers: dict[str, Answer] = {}
        numbers = itertools.count()
        rolled = asyncio.Event()

        async def caller(session: aiohttp.ClientSession) -> None:
            # Calls keep coming until the roll is over, and at least `at_least` of them.
            while (n := next(numbers)) < at_least or not rolled.is_set():
                call = f"roll-call-{n}"
                answers[call] = await post(
                    session, url, "tallied", {"ledger": str(ledger), "call": call, "seconds": 0.2}
                )

        exit_codes: dict[str, int] = {}
        replacements: list[Service] = []

        async def roll() -> None:
            await asyncio.sleep(0.5)  # the load is up
            for i, old in enumerate(originals):
                exit_codes[old.name] = await asyncio.to_thread(old.terminate, 30)
                replacement = start_worker(stack, f"roll-new-{i}", "tallied", "roll")
                replacements.append(replacement)
                await registered(stack, replacement)
                await asyncio.sleep(0.3)  # the replacement takes a share of the load
            rolled.set()

        started = time.monotonic()
        async with client_session() as session:
            await asyncio.wait_for(asyncio.gather(roll(), *(caller(session) for _ in range(callers))), 90)
        took = time.monotonic() - started

    wrong = {call: (a.status, a.body) for call, a in answers.items() if not tallied_ok(a, call)}
    assert not wrong, f"{len(wrong)} of {len(answers)} calls not answered with their result: {wrong}"
    counts = read_ledger(ledger)
    not_once = ran_not_exactly_once(counts, list(answers))
    assert not not_once, f"calls that did not run exactly once: {not_once}"
    assert set(counts) == set(answers), f"the ledger has calls nobody made: {set(counts) - set(answers)}"
    assert exit_codes == {old.name: 0 for old in originals}, {
        name: log_of(old)[-3000:] for name, old in zip(exit_codes, originals, strict=True)
    }
    # The SIGTERMs did land on busy workers: each said how many jobs it let finish.
    drained = [_drained_jobs(log_of(old)) for old in originals]
    assert all(n is not None for n in drained), [log_of(old)[-2000:] for old in originals]
    assert all(drained), f"a worker had no job running when it was stopped: {drained}"
    ran_on = {a.body["result"]["pid"] for a in answers.values()}
    new_pids = {r.process.pid for r in replacements}
    assert ran_on & new_pids, f"no call ran on a replacement worker: {ran_on}, replacements {new_pids}"
    print(
        f"\nrolling restart: {len(answers)} calls in {took:.1f} s, 3 workers SIGTERMed with "
        f"{drained} job(s) running, all answered, each ran once; "
        f"{len(ran_on & new_pids)} of the 3 replacements served calls"
    )


def _drained_jobs(log: str) -> int | None:
    """How many running jobs the worker's SIGTERM log line says it let finish."""
    for line in log.splitlines():
        if "stopping:" in line and "running job(s)" in line:
            return int(line.split("stopping:")[1].split()[0])
    return None


# --- 2. a facade SIGKILLed mid-load ------------------------------------------------------------


async def test_a_facade_killed_mid_load_fails_its_own_calls_fast_and_not_the_other_facade_s(
    tmp_path: Path,
):
    """Two facades on one Redis, one pool. Facade A is SIGKILLed while calls are in flight on
    both: B's calls all succeed, during the kill and after; A's in-flight callers get a
    connection error at once, not a hang; no call runs twice (a tool that is not idempotent),
    and the jobs A had queued still run to their end, once."""
    ledger = tmp_path / "ledger"
    with running_stack(tmp_path, TOOLQ_CONCURRENCY="50") as stack:
        facade_a, url_a = stack.facade(name="facade-a")
        _, url_b = stack.facade(name="facade-b")
        workers = [start_worker(stack, f"pool-{i}", "tallied_once", "shared") for i in range(2)]
        await registered(stack, *workers)

        answers_a: dict[str, Answer] = {}
        errors_a: dict[str, tuple[BaseException, float]] = {}  # the error, and when it came
        answers_b: dict[str, Answer] = {}
        numbers = itertools.count()
        killed_at: float | None = None
        stop_b = asyncio.Event()

        def params(call: str, seconds: float) -> dict[str, Any]:
            return {"ledger": str(ledger), "call": call, "seconds": seconds}

        async def caller_a(session: aiohttp.ClientSession) -> None:
            while True:
                call = f"a-{next(numbers)}"
                try:
                    answers_a[call] = await post(session, url_a, "tallied_once", params(call, 0.5))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors_a[call] = (exc, time.monotonic())
                    return  # A is gone

        async def caller_b(session: aiohttp.ClientSession) -> None:
            while not stop_b.is_set():
                call = f"b-{next(numbers)}"
                answers_b[call] = await post(session, url_b, "tallied_once", params(call, 0.3))

        async def kill_a() -> None:
            nonlocal killed_at

            def a_calls_running() -> bool:
                running = [c for c, n in read_ledger(ledger).items() if c.startswith("a-") and not n["end"]]
                return len(answers_a) >= 15 and len(running) >= 5

            await asyncio.to_thread(
                wait_until, a_calls_running, 20, "calls through A to be answered and running"
            )
            facade_a.process.kill()  # SIGKILL: no shutdown, no abort of its jobs
            killed_at = time.monotonic()
            await asyncio.sleep(3)  # B keeps serving after the kill
            stop_b.set()

        async with client_session(timeout=60) as session:
            try:
                await asyncio.wait_for(
                    asyncio.gather(
                        kill_a(),
                        *(caller_a(session) for _ in range(15)),
                        *(caller_b(session) for _ in range(15)),
                    ),
                    30,
                )
            except TimeoutError:
                pytest.fail(f"callers hung: {15 - len(errors_a)} of A's callers never saw it go")
        assert killed_at is not None
        assert facade_a.process.wait(5) == -9
        check_calls_through_b(answers_b, killed_at)
        check_callers_of_a(answers_a, errors_a, killed_at)

        # The jobs A left behind still run (nobody aborted them): wait until the pool is idle.
        await asyncio.to_thread(
            wait_until, lambda: idle_queue(stack.redis.url, "shared"), 20, "A's jobs to be worked off"
        )
        for worker in workers:
            assert worker.alive(), log_of(worker)

    ran = check_ledger_after_the_kill(read_ledger(ledger), [*answers_a, *answers_b], list(errors_a))
    print(
        f"\nfacade SIGKILL: {len(answers_b)} calls through B all answered; "
        f"{len(answers_a)} through A answered before the kill, {len(errors_a)} in flight got a "
        f"connection error, of which {ran} ran to their end once after A died"
    )


def check_calls_through_b(answers: dict[str, Answer], killed_at: float) -> None:
    """B's calls: all answered with their results, those that spanned A's kill and those after."""
    wrong = {call: (a.status, a.body) for call, a in answers.items() if not tallied_ok(a, call)}
    assert not wrong, f"calls through B failed: {wrong}"
    during = [a for a in answers.values() if a.at - a.seconds < killed_at < a.at]
    after = [a for a in answers.values() if a.at - a.seconds > killed_at]
    assert during and len(after) > 20, f"{len(during)} calls through B spanned the kill, {len(after)} after"


def check_callers_of_a(
    answers: dict[str, Answer], errors: dict[str, tuple[BaseException, float]], killed_at: float
) -> None:
    """A's calls: answered before the kill, or (in flight then) a connection error soon after."""
    wrong = {call: (a.status, a.body) for call, a in answers.items() if not tallied_ok(a, call)}
    assert not wrong, f"calls through A answered before the kill failed: {wrong}"
    assert len(errors) == 15, f"not every caller of A saw it go: {errors}"
    for call, (exc, at) in errors.items():
        assert isinstance(exc, aiohttp.ClientConnectionError), f"{call}: {exc!r}, not a connection error"
        assert at - killed_at < 3, f"{call}: its error came {at - killed_at:.1f} s after the kill"


def check_ledger_after_the_kill(
    counts: dict[str, dict[str, int]], answered: list[str], in_flight: list[str]
) -> int:
    """No call ran twice, each answered one once, and each of A's in-flight calls that started
    also ended (at most once). Returns how many of those ran."""
    twice = {call: n for call, n in counts.items() if n["start"] > 1 or n["end"] > 1}
    assert not twice, f"calls that ran more than once: {twice}"
    not_once = ran_not_exactly_once(counts, answered)
    assert not not_once, f"answered calls that did not run exactly once: {not_once}"
    runs = {call: counts.get(call, {"start": 0, "end": 0}) for call in in_flight}
    unfinished = {call: n for call, n in runs.items() if n["start"] != n["end"]}
    assert not unfinished, f"A's in-flight calls that started and never ended: {unfinished}"
    ran = sum(n["start"] for n in runs.values())
    assert ran >= 5, f"only {ran} of A's in-flight calls were running or ran: the kill was not mid-call"
    return ran


# --- 3. a burst far beyond what the pool can hold --------------------------------------------


async def test_a_burst_beyond_the_pool_is_refused_at_once_and_the_rest_all_finish(tmp_path: Path):
    """5,000 calls at once to a pool that runs 10 at a time: each is answered, either with its
    result or with 503 "overloaded" and a Retry-After, the refusals at once; every accepted call
    finishes (no time-out), exactly once; no refused call ever starts. The pool holds what it can
    work off within its calls' deadlines (10 s here) at the tool's pace, no fixed depth: before,
    it held a whole deadline's worth and hundreds of accepted calls timed out."""
    ledger = tmp_path / "ledger"
    burst = 5000
    seconds = 0.2
    with running_stack(tmp_path) as stack:
        facade, url = stack.facade(TOOLQ_MAX_CALL_SECONDS="10", TOOLQ_BACKLOG_PER_SLOT="10")
        worker = start_worker(stack, "burst-1", "tallied", "burst", TOOLQ_CONCURRENCY="10")
        await registered(stack, worker)
        rss_before = rss_mb(facade)

        async def one(session: aiohttp.ClientSession, n: int) -> tuple[str, Answer | BaseException]:
            call = f"burst-{n}"
            try:
                params = {"ledger": str(ledger), "call": call, "seconds": seconds}
                return call, await post(session, url, "tallied", params)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return call, exc

        started = time.monotonic()
        async with client_session(timeout=90, traced=True) as session:
            outcomes = await asyncio.gather(*(one(session, n) for n in range(burst)))
        took = time.monotonic() - started
        await asyncio.to_thread(
            wait_until, lambda: idle_queue(stack.redis.url, "burst"), 20, "the pool to be idle"
        )
        rss_after = rss_mb(facade)
        assert worker.alive() and facade.alive(), log_of(facade)[-3000:]

    failed = {call: repr(o) for call, o in outcomes if isinstance(o, BaseException)}
    assert not failed, f"{len(failed)} calls got no HTTP answer: {dict(list(failed.items())[:10])}"
    answers = {call: o for call, o in outcomes if isinstance(o, Answer)}
    accepted = {call: a for call, a in answers.items() if a.status == 200}
    refused = {call: a for call, a in answers.items() if a.status == 503}
    other = {call: (a.status, a.body) for call, a in answers.items() if a.status not in (200, 503)}
    assert not other, f"{len(other)} answers neither a result nor a refusal: {dict(list(other.items())[:10])}"

    wrong = {call: a.body for call, a in accepted.items() if not tallied_ok(a, call)}
    assert not wrong, f"accepted calls without their own result: {dict(list(wrong.items())[:10])}"
    unclear = {
        call: (a.retry_after, a.body)
        for call, a in refused.items()
        if not (
            "overloaded" in a.body.get("error", "")
            and a.retry_after is not None
            and int(a.retry_after) >= 1
            and a.body.get("retry_after") == int(a.retry_after)
        )
    }
    assert not unclear, (
        f"{len(unclear)} 503s are not a clear overload refusal: {dict(list(unclear.items())[:10])}"
    )
    assert accepted and refused, f"{len(accepted)} accepted, {len(refused)} refused: no admission control?"
    # Never more accepted than a deadline's worth (10 s of 10 slots) plus what was worked off.
    worked_off = took * 10 / seconds
    assert len(accepted) <= 10 * 10 / seconds + worked_off, (len(accepted), worked_off)

    counts = read_ledger(ledger)
    not_once = ran_not_exactly_once(counts, list(accepted))
    assert not not_once, f"accepted calls that did not run exactly once: {dict(list(not_once.items())[:10])}"
    started_refused = set(counts) & set(refused)
    assert not started_refused, f"refused calls that ran anyway: {sorted(started_refused)[:10]}"
    assert len(counts) == len(accepted), (len(counts), len(accepted))

    # Latency as the caller sees it, and from its request going out (without the connecting of
    # 5,000 connections at once by this one test process, which is most of the rest).
    latency = sorted(a.seconds for a in refused.values())
    served = sorted(a.seconds_after_sending for a in refused.values())
    accepted_latency = sorted(a.seconds for a in accepted.values())
    backlog_seconds = 5.0  # what the last of a queue full to half its 10 s deadline waits
    print(
        f"\nburst: {burst} calls of a {seconds} s tool to 10 slots (10 s deadline) in "
        f"{took:.1f} s: {len(accepted)} accepted, {len(refused)} refused; refusal latency p50 "
        f"{statistics.median(latency) * 1000:.0f} ms, p99 {percentile(latency, 0.99) * 1000:.0f} ms, "
        f"max {latency[-1] * 1000:.0f} ms (after the request went out: p50 "
        f"{statistics.median(served) * 1000:.0f} ms, p99 {percentile(served, 0.99) * 1000:.0f} ms); "
        f"accepted latency p50 {statistics.median(accepted_latency):.2f} s, max "
        f"{accepted_latency[-1]:.2f} s; facade RSS {rss_before:.1f} MB before, {rss_after:.1f} MB after"
    )
    # Refused at once, never behind the backlog. Loose bounds, about correctness: a refusal that
    # waited for room, or for its deadline, would take the backlog's time or tens of seconds.
    assert latency[-1] < 10, f"a refusal took {latency[-1]:.1f} s"
    assert statistics.median(served) < backlog_seconds, (
        f"half the refusals took over {statistics.median(served):.2f} s after their request went out"
    )


# --- 4. large results across processes -----------------------------------------------------------

LARGE = 8
#: Results of this many KiB are just under contract.INLINE_RESULT_BYTES: pushed, not stored.
PUSHED_KIB = 60
PUSHED = 600


async def test_large_results_arrive_whole_and_do_not_cut_the_events_channel(tmp_path: Path):
    """A result just under TOOLQ_MAX_RESULT_BYTES arrives whole, one just over is a clear tool
    error naming the limit; while several large results are delivered, small calls all succeed
    and the facade never loses its events channel."""
    ledger = tmp_path / "ledger"
    limit = 4_000_000
    under_kib, over_kib = 3896, 3907  # 3,989,504 and 4,000,768 bytes of text
    with running_stack(tmp_path) as stack:
        facade, url = stack.facade()
        worker = start_worker(
            stack, "big-1", "sized,tallied", "big", TOOLQ_MAX_RESULT_BYTES=str(limit), TOOLQ_CONCURRENCY="50"
        )
        await registered(stack, worker)
        async with client_session(timeout=60) as session:
            under = await post(session, url, "sized", {"kilobytes": under_kib})
            assert under.status == 200, under.body
            (block,) = under.body["result"]["content"]
            assert block["type"] == "text" and block["text"] == "x" * (under_kib * 1024), len(block["text"])

            over = await post(session, url, "sized", {"kilobytes": over_kib})
            assert over.status == 422, (over.status, over.body)
            assert f"{limit:,}" in over.body["error"] and "TOOLQ_MAX_RESULT_BYTES" in over.body["error"], (
                over.body
            )

            # Several large results and many small calls at once, on the one events channel.
            # Large results are stored and announced; those just under INLINE_RESULT_BYTES are
            # pushed through the channel itself, many at once (tens of MB for Redis to buffer).
            large = [post(session, url, "sized", {"kilobytes": under_kib}) for _ in range(LARGE)]
            pushed = [post(session, url, "sized", {"kilobytes": PUSHED_KIB}) for _ in range(PUSHED)]
            small_calls = [f"small-{n}" for n in range(300)]
            small = [
                post(session, url, "tallied", {"ledger": str(ledger), "call": call, "seconds": 0})
                for call in small_calls
            ]
            started = time.monotonic()
            answers = await asyncio.gather(*large, *pushed, *small)
            took = time.monotonic() - started
        large_answers = answers[:LARGE]
        pushed_answers = answers[LARGE : LARGE + PUSHED]
        small_answers = answers[LARGE + PUSHED :]
        assert facade.alive() and worker.alive(), log_of(facade)[-3000:]
        facade_log, worker_log = log_of(facade), log_of(worker)

    whole = [
        a.status == 200 and a.body["result"]["content"][0]["text"] == "x" * (under_kib * 1024)
        for a in large_answers
    ]
    assert all(whole), f"large results not whole: {[(a.status, len(str(a.body))) for a in large_answers]}"
    pushed_whole = [
        a.status == 200 and a.body["result"]["content"][0]["text"] == "x" * (PUSHED_KIB * 1024)
        for a in pushed_answers
    ]
    assert all(pushed_whole), f"{pushed_whole.count(False)} of {PUSHED} pushed results not whole"
    wrong = {
        call: (a.status, a.body)
        for call, a in zip(small_calls, small_answers, strict=True)
        if not tallied_ok(a, call)
    }
    assert not wrong, f"small calls failed next to the large results: {wrong}"
    not_once = ran_not_exactly_once(read_ledger(ledger), small_calls)
    assert not not_once, f"small calls that did not run exactly once: {not_once}"
    assert "events channel lost" not in facade_log, facade_log[-3000:]
    assert "could not push event" not in worker_log, worker_log[-3000:]
    small_latency = [a.seconds for a in small_answers]
    print(
        f"\nlarge results: {LARGE} x {under_kib * 1024:,} bytes, {PUSHED} x {PUSHED_KIB} KiB pushed and "
        f"300 small calls together in {took:.1f} s "
        f"(small calls p50 {statistics.median(small_latency) * 1000:.0f} ms, max "
        f"{max(small_latency) * 1000:.0f} ms); {over_kib * 1024:,} bytes refused: {over.body['error']!r}"
    )


# --- 5. soak ---------------------------------------------------------------------------------------


async def test_a_soak_of_twenty_thousand_calls_loses_nothing_and_the_facade_stays_flat(tmp_path: Path):
    """20,000 calls at 200 concurrent callers through one facade and two workers: 20,000
    answers, each 200 with its own call, each call run exactly once, and the facade's memory
    flat between the first 5,000 calls and the end."""
    ledger = tmp_path / "ledger"
    total, callers, first = 20_000, 200, 5_000
    with running_stack(tmp_path, TOOLQ_CONCURRENCY="100") as stack:
        facade, url = stack.facade()
        workers = [start_worker(stack, f"soak-{i}", "tallied", "soak") for i in range(2)]
        await registered(stack, *workers)

        answers: dict[str, Answer] = {}
        numbers = itertools.count()
        rss: dict[str, float] = {"start": rss_mb(facade)}
        first_done = time.monotonic()

        async def caller(session: aiohttp.ClientSession) -> None:
            nonlocal first_done
            while (n := next(numbers)) < total:
                call = f"soak-{n}"
                params = {"ledger": str(ledger), "call": call, "seconds": 0}
                answers[call] = await post(session, url, "tallied", params)
                if len(answers) == first:
                    rss["first"] = rss_mb(facade)
                    first_done = time.monotonic()

        started = time.monotonic()
        async with client_session(timeout=60) as session:
            await asyncio.wait_for(asyncio.gather(*(caller(session) for _ in range(callers))), 110)
        ended = time.monotonic()
        took = ended - started
        rss["end"] = rss_mb(facade)
        for service in (facade, *workers):
            assert service.alive(), log_of(service)[-3000:]

    assert len(answers) == total, f"{total - len(answers)} calls not answered"
    wrong = {call: (a.status, a.body) for call, a in answers.items() if not tallied_ok(a, call)}
    assert not wrong, (
        f"{len(wrong)} calls not answered with their own result: {dict(list(wrong.items())[:10])}"
    )
    counts = read_ledger(ledger)
    not_once = ran_not_exactly_once(counts, list(answers))
    assert not not_once, (
        f"{len(not_once)} calls did not run exactly once: {dict(list(not_once.items())[:10])}"
    )
    assert len(counts) == total, f"the ledger has {len(counts)} calls, not {total}"
    growth = rss["end"] - rss["first"]
    print(
        f"\nsoak: {total} calls at {callers} concurrent in {took:.1f} s "
        f"({total / took:.0f} calls/s; the last {total - first} at "
        f"{(total - first) / (ended - first_done):.0f}/s); facade RSS {rss['start']:.1f} MB "
        f"at start, {rss['first']:.1f} MB after {first}, {rss['end']:.1f} MB at the end (+{growth:.1f} MB)"
    )
    assert growth < 30, f"the facade grew {growth:.1f} MB over {total - first} calls"
