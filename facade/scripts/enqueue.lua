-- Admit one call and enqueue its arq job, atomically, in one round trip (facade/queue_client.py).
--
-- KEYS[1]   the job key            KEYS[2]   the pool's queue (arq's sorted set)
-- KEYS[3..] token buckets the call must take a token from (per principal, per tool)
-- ARGV[1] job key TTL (ms)   ARGV[2] the serialized job   ARGV[3] job id
-- ARGV[4] the pool's ready list (one worker of the pool pops each id from it)
-- ARGV[5] the most jobs the queue may hold (queued and running) before calls are refused; 0: no limit
-- ARGV[6..] per bucket: its capacity, then its refill in tokens per ms
--
-- The job's score (when it is due) and the buckets' clock are Redis's own (TIME), the clock the
-- workers' claims judge due-ness by, so no two hosts' clocks are ever compared.
--
-- Returns {1, backlog, 0} when enqueued, {0, backlog, 0} when the queue is full,
-- {-1, bucket index, ms until a token} when a bucket is empty. Nothing is written on a refusal.
local backlog = redis.call('ZCARD', KEYS[2])
local limit = tonumber(ARGV[5])
if limit > 0 and backlog >= limit then
  return {0, backlog, 0}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local levels = {}
for i = 1, #KEYS - 2 do
  local capacity = tonumber(ARGV[4 + 2 * i])
  local refill = tonumber(ARGV[5 + 2 * i])
  local state = redis.call('HMGET', KEYS[2 + i], 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - at) * refill)
  if tokens < 1 then
    return {-1, i, math.ceil((1 - tokens) / refill)}
  end
  levels[i] = tokens
end
for i = 1, #KEYS - 2 do
  local capacity = tonumber(ARGV[4 + 2 * i])
  local refill = tonumber(ARGV[5 + 2 * i])
  redis.call('HSET', KEYS[2 + i], 'tokens', tostring(levels[i] - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[2 + i], math.ceil(capacity / refill) + 1000)
end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('LPUSH', ARGV[4], ARGV[3])
-- Ids no worker took (its pool is gone) leave with the newest job's deadline.
redis.call('PEXPIRE', ARGV[4], ARGV[1])
return {1, backlog, 0}
