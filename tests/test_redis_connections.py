"""Redis as production runs it: behind a password, an ACL user, or TLS, reached through REDIS_URL
by the facade and the workers alike (real redis-server, real processes)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_processes import RedisServer, Stack, seed_post

pytestmark = pytest.mark.redis_server


def stack_on(redis: RedisServer, directory: Path) -> Iterator[Stack]:
    redis.start()
    stack = Stack(redis, directory)
    try:
        yield stack
    finally:
        stack.stop_all()
        redis.stop()


async def assert_serves(stack: Stack) -> None:
    _, url = stack.facade()
    stack.worker("add-1", "--tools", "add")
    await asyncio.to_thread(stack.wait_for_workers, "add-1")
    assert await seed_post(url, "add", {"a": 15, "b": 27}) == (
        200,
        {"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}},
    )
    for service in stack.services:
        assert "s3cret" not in service.output()  # the password is never printed


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[Stack]:
    redis = RedisServer(tmp_path, "--requirepass", "s3cret")
    redis.userinfo = ":s3cret@"
    yield from stack_on(redis, tmp_path)


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[Stack]:
    # The default user is off; toolq's user may run anything but the commands Redis calls dangerous.
    redis = RedisServer(
        tmp_path,
        "--user",
        "default",
        "off",
        "--user",
        "toolq",
        "on",
        ">s3cret",
        "~*",
        "&*",
        "+@all",
        "-@dangerous",
    )
    redis.userinfo = "toolq:s3cret@"
    yield from stack_on(redis, tmp_path)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[Stack]:
    ca, cert, key = make_certificates(tmp_path)
    redis = RedisServer(tmp_path)
    redis.extra_args = (
        "--port", "0", "--tls-port", str(redis.port),
        "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
        "--tls-auth-clients", "no", "--requirepass", "s3cret",
    )  # fmt: skip
    redis.scheme, redis.userinfo, redis.query = "rediss", ":s3cret@", f"?ssl_ca_certs={ca}"
    yield from stack_on(redis, tmp_path)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (openssl)."""
    if shutil.which("openssl") is None:
        reason = (
            "openssl is not installed (apt-get install openssl); the TLS test makes its certificates with it"
        )
        if os.environ.get("TOOLQ_REQUIRE_REDIS") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_REDIS=1")
        pytest.skip(reason)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, request = directory / "server.crt", directory / "server.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for command in (
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=toolq test CA",
        ],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [
            "x509",
            "-req",
            "-in",
            request,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            extensions,
        ],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, cwd=directory)
    return ca, cert, key


async def test_a_redis_with_a_password(password_redis: Stack):
    await assert_serves(password_redis)


async def test_a_redis_acl_user_without_dangerous_commands(acl_redis: Stack):
    await assert_serves(acl_redis)


async def test_a_redis_over_tls_with_a_private_ca(tls_redis: Stack):
    await assert_serves(tls_redis)


async def test_a_wrong_password_is_unavailable_and_the_answer_hides_it(password_redis: Stack):
    _, url = password_redis.facade(REDIS_URL=password_redis.redis.url.replace("s3cret", "wrong"))
    status, body = await seed_post(url, "add", {"a": 1, "b": 2})
    assert status == 503, body
    assert "wrong" not in body["error"] and "127.0.0.1" not in body["error"]
