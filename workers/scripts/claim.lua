-- Claim jobs a worker popped from the ready list or found in the queue (workers/claims.py),
-- in one round trip: claim_jobs (claim_jobs.lua) is prepended.
--
-- ARGV[1..7] what claim_jobs takes (worker id, lease ms, the queue, the abort set, the
-- prefixes of in-progress, job and retry keys)   ARGV[8] the most jobs to claim (free slots)
-- ARGV[9..] the ids, in the order to try them
local ids = {}
for i = 9, #ARGV do ids[#ids + 1] = ARGV[i] end
return claim_jobs(ids, tonumber(ARGV[8]), ARGV)
