-- Store a job's result, end the job, tell the waiting facade, and take the next jobs waiting
-- for the pool, in one round trip (workers/claims.py): claim_jobs (claim_jobs.lua) is prepended.
--
-- arq's finish_job and finish_failed_job (SET result, DEL in-progress/retry/job, ZREM from the
-- abort set and the queue, in a MULTI), then toolq's completion push, which leaves only once
-- the result is stored (a facade that hears of it can always read it), then up to ARGV[13] ids
-- from the pool's ready list, claimed: a busy worker takes its next jobs as it finishes one,
-- with no round trip of their own.
--
-- KEYS[1] in-progress key   KEYS[2] result key   KEYS[3] retry key   KEYS[4] job key
-- KEYS[5] arq's abort set   KEYS[6] the pool's queue   KEYS[7] the pool's ready list
-- ARGV[1..7] what claim_jobs takes   ARGV[8] arq's result record   ARGV[9] how long it is kept (ms)
-- ARGV[10] the job id   ARGV[11] the waiting facade's events channel ('' for none)
-- ARGV[12] the completion event   ARGV[13] how many next jobs to take (0: none)
redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[9])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[10])
redis.call('ZREM', KEYS[6], ARGV[10])
if ARGV[11] ~= '' then
  redis.call('PUBLISH', ARGV[11], ARGV[12])
end
local room = tonumber(ARGV[13])
if room <= 0 then
  return {}
end
local ids = redis.call('RPOP', KEYS[7], room)  -- the oldest first (enqueue pushes on the left)
if not ids then
  return {}
end
return claim_jobs(ids, room, ARGV)
