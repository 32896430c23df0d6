"""Job leases kept alive from a thread of their own, across Redis gaps.

A job this worker claimed is marked by its in-progress key (arq's), holding this worker's id
and expiring after the lease: while the key lives, no other worker starts the job. The keeper
renews those keys every third of the lease from its own thread and its own connection, so a
tool that blocks the event loop does not lose its claim, and a Redis restart (which may drop the
keys, or bring them back expired) is answered by putting them back the moment Redis answers
again, before any worker of the pool claims jobs (ToolWorker holds its claims for a moment after
a gap for that). One script renews them all at once: a key that is missing is taken back unless
the job already has a result (it finished and was delivered); a key another worker holds is
left alone and reported.

A job is renewed until its deadline (the tool's timeout plus arq's margin): a tool that blocks
the loop past it gives its claim up, so the pool can run the job again. A job whose result is
waiting to be delivered (Redis was away when it finished) is held with no deadline until it is.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from arq.connections import RedisSettings

from workers import contract
from workers.settings import TLS_OPTIONS

log = logging.getLogger("toolq.worker.leases")

#: Keys: per job its in-progress key then its result key. Args: owner, lease in ms.
#: Returns the job positions (1-based) whose key another worker holds.
RENEW_SCRIPT = """
local lost = {}
for i = 1, #KEYS, 2 do
  local holder = redis.call('GET', KEYS[i])
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  elseif holder == false then
    if redis.call('EXISTS', KEYS[i + 1]) == 0 then
      redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    end
  else
    table.insert(lost, (i + 1) / 2)
  end
end
return lost
"""

#: While Redis does not answer, the keeper tries again this often.
RETRY_SECONDS = 0.2


def sync_client(settings: RedisSettings, timeout: float) -> redis.Redis:
    """A blocking client for the same Redis the worker's pool uses (password, database, TLS)."""
    tls = {name: getattr(settings, name) for name in TLS_OPTIONS}
    return redis.Redis(
        host=settings.host if isinstance(settings.host, str) else settings.host[0][0],
        port=settings.port,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        **(tls if settings.ssl else {}),
    )


@dataclass
class _Lease:
    #: time.monotonic() after which the lease is no longer renewed; inf while delivering.
    until: float
    delivering: bool = False


class LeaseKeeper:
    """The leases of the jobs one worker holds, renewed from a daemon thread."""

    def __init__(
        self,
        client: redis.Redis,
        owner: str,
        lease_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.interval = lease_seconds / 3
        self._client = client
        self._renew = client.register_script(RENEW_SCRIPT)
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set while Redis does not answer the keeper; cleared once its leases are back.
        self.redis_away = threading.Event()

    # --- what the worker tells it (from the event loop) ---------------------------------------

    def take(self, job_id: str, seconds: float) -> None:
        """A job claimed here: renew its lease for up to `seconds`."""
        with self._lock:
            self._leases[job_id] = _Lease(until=self._clock() + seconds)

    def deliver(self, job_id: str) -> None:
        """The job finished: hold its lease, with no deadline, until its result is delivered."""
        with self._lock:
            self._leases[job_id] = _Lease(until=math.inf, delivering=True)

    def release(self, job_id: str, *, delivered: bool = False) -> None:
        """Stop renewing the job's lease; while its result is being delivered, only `delivered`
        releases it."""
        with self._lock:
            lease = self._leases.get(job_id)
            if lease is not None and (delivered or not lease.delivering):
                del self._leases[job_id]

    def holds(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._leases

    # --- the thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"toolq-leases-{self.owner}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def renew(self) -> list[str]:
        """Renew every lease held now (one round trip); the job ids another worker holds."""
        now = self._clock()
        with self._lock:
            expired = [job_id for job_id, lease in self._leases.items() if lease.until < now]
            for job_id in expired:
                del self._leases[job_id]
            held = list(self._leases)
        for job_id in expired:
            log.warning(
                "job %s is past its deadline and still not finished (a tool blocking the event loop?): "
                "its lease is given up, so the pool may run it again",
                job_id,
            )
        if not held:
            return []
        keys: list[str] = []
        for job_id in held:
            keys += [contract.IN_PROGRESS_KEY_PREFIX + job_id, contract.result_key(job_id)]
        lost_positions = self._renew(keys=keys, args=[self.owner, self.lease_ms])
        lost = [held[int(position) - 1] for position in lost_positions]
        for job_id in lost:
            log.warning("job %s is held by another worker now; this worker's run of it goes on", job_id)
        return lost

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                self.renew()
            except (redis.RedisError, OSError) as exc:
                if not self.redis_away.is_set():
                    log.warning("could not renew job leases (%s); retrying every %.1f s", exc, RETRY_SECONDS)
                self.redis_away.set()
                wait = RETRY_SECONDS
                continue
            if self.redis_away.is_set():
                log.info("Redis is back: job leases renewed")
                self.redis_away.clear()
            wait = self.interval
