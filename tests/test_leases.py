"""The lease keeper (workers/leases.py) on its own, against a fake Redis: what it renews, puts
back, leaves alone and gives up."""

from __future__ import annotations

import fakeredis
import pytest

from workers import contract
from workers.leases import LeaseKeeper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keeper(client: fakeredis.FakeRedis, clock: Clock) -> LeaseKeeper:
    return LeaseKeeper(client, "worker-a", lease_seconds=3, clock=clock)


def lease(client: fakeredis.FakeRedis, job_id: str) -> tuple[bytes | None, int]:
    key = contract.IN_PROGRESS_KEY_PREFIX + job_id
    return client.get(key), client.pttl(key)


def test_a_held_lease_is_renewed_to_a_full_lease(keeper, client):
    client.set(contract.IN_PROGRESS_KEY_PREFIX + "j1", "worker-a", px=100)
    keeper.take("j1", 60)
    assert keeper.renew() == []
    holder, ttl = lease(client, "j1")
    assert holder == b"worker-a" and 2900 < ttl <= 3000


def test_a_lease_redis_lost_is_put_back_unless_the_job_has_a_result(keeper, client):
    keeper.take("running", 60)
    keeper.take("finished", 60)
    client.set(contract.result_key("finished"), b"{}")
    keeper.renew()
    assert lease(client, "running")[0] == b"worker-a"
    assert lease(client, "finished")[0] is None  # delivered: nothing to hold any more


def test_a_lease_another_worker_holds_is_reported_and_left_alone(keeper, client):
    client.set(contract.IN_PROGRESS_KEY_PREFIX + "taken", "worker-b", px=5000)
    keeper.take("taken", 60)
    assert keeper.renew() == ["taken"]
    assert lease(client, "taken")[0] == b"worker-b"


def test_a_job_past_its_deadline_is_no_longer_renewed(keeper, client, clock):
    keeper.take("overrun", 10)
    clock.now += 11
    keeper.renew()
    assert lease(client, "overrun")[0] is None
    assert not keeper.holds("overrun")


def test_a_result_being_delivered_keeps_its_lease_past_any_deadline_until_delivered(keeper, client, clock):
    keeper.take("late", 10)
    keeper.deliver("late")
    clock.now += 3600
    keeper.release("late")  # the job's task ending does not release a result still on its way
    keeper.renew()
    assert keeper.holds("late") and lease(client, "late")[0] == b"worker-a"
    keeper.release("late", delivered=True)
    assert not keeper.holds("late")


def test_released_jobs_are_not_renewed(keeper, client):
    keeper.take("done", 60)
    keeper.release("done")
    assert keeper.renew() == []
    assert lease(client, "done")[0] is None
