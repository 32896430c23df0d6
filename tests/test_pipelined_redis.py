"""The hot path's Redis connection (workers/pipelined_redis.py) against a real redis-server:
replies reach the commands that asked for them, in order, through error replies, missing
scripts, cancelled callers, timeouts and a Redis restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis as redis_sync
from real_processes import RedisServer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers.pipelined_redis import PipelinedRedis, Script, pack
from workers.settings import redis_settings

pytestmark = pytest.mark.redis_server


@pytest.fixture
def server(tmp_path: Path):
    redis = RedisServer(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def line(server: RedisServer):
    connection = PipelinedRedis(redis_settings(server.url))
    yield connection
    await connection.close()


def test_commands_are_packed_as_resp_arrays_of_bulk_strings():
    assert pack(["SET", b"k", 7, 1.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n7\r\n$3\r\n1.5\r\n"


async def test_concurrent_commands_each_get_their_own_reply(line: PipelinedRedis):
    await asyncio.gather(*(line.execute("SET", f"key-{n}", n) for n in range(500)))
    values = await asyncio.gather(*(line.execute("GET", f"key-{n}") for n in range(500)))
    assert values == [str(n).encode() for n in range(500)]


async def test_an_error_reply_fails_only_its_own_command(line: PipelinedRedis):
    await line.execute("SET", "text", "not a number")
    answers = await asyncio.gather(
        line.execute("INCR", "counter"),
        line.execute("INCR", "text"),
        line.execute("INCR", "counter"),
        return_exceptions=True,
    )
    assert answers[0] == 1 and answers[2] == 2
    assert isinstance(answers[1], ResponseError) and "not an integer" in str(answers[1])


async def test_a_script_redis_does_not_have_is_loaded_and_run(line: PipelinedRedis, server: RedisServer):
    script = Script("return {KEYS[1], ARGV[1]}")
    assert await line.run_script(script, ["k"], ["v"]) == [b"k", b"v"]  # EVAL: not cached before
    client = redis_sync.Redis.from_url(server.url)
    try:
        assert client.script_exists(script.sha) == [True]
        client.script_flush()
    finally:
        client.close()
    assert await line.run_script(script, ["k2"], ["v2"]) == [b"k2", b"v2"]


async def test_a_caller_that_gives_up_does_not_shift_the_replies_of_others(line: PipelinedRedis):
    await line.execute("SET", "a", "A")
    await line.execute("SET", "b", "B")
    # BLPOP holds the connection's next reply back for 0.3 s: the caller gives up meanwhile.
    blocked = asyncio.create_task(line.execute("BLPOP", "nothing-here", "0.3"))
    following = asyncio.create_task(line.execute("GET", "a"))
    await asyncio.sleep(0.05)
    blocked.cancel()
    assert await following == b"A"
    assert await line.execute("GET", "b") == b"B"


async def test_a_command_past_its_timeout_fails_and_later_ones_are_still_right(server: RedisServer):
    line = PipelinedRedis(redis_settings(server.url), timeout=0.2)
    try:
        await line.execute("SET", "a", "A")
        with pytest.raises(RedisTimeoutError):
            await line.execute("BLPOP", "nothing-here", "1")
        assert await line.execute("GET", "a") == b"A"  # on a new connection, not the late BLPOP reply
    finally:
        await line.close()


async def test_commands_fail_while_redis_is_away_and_work_once_it_is_back(
    line: PipelinedRedis, server: RedisServer
):
    await line.execute("SET", "a", "A")
    server.stop()
    with pytest.raises(RedisConnectionError):
        await line.execute("GET", "a")
    server.start()  # the same port, empty (no persistence)
    assert await line.execute("SET", "a", "again") == b"OK"
    assert await line.execute("GET", "a") == b"again"
