-- claim_jobs: claim jobs and read them, for one worker (prepended to claim.lua and finish.lua
-- by workers/claims.py, which both take jobs this way).
--
-- What arq does in two steps of four and five commands each (its claim: WATCH, EXISTS, ZSCORE,
-- MULTI; its run_job: GET, INCR, EXPIRE, ZREM), for a batch of jobs at once. A claim holds only
-- if the job's in-progress key was free to set (this worker's id, for the lease) and the job is
-- still queued and due; a claim that does not hold is released at once. A job's keys are made
-- from its id and arq's prefixes (Redis Cluster is not supported: see the README).
--
-- Due means due by Redis's own clock (TIME), the clock the enqueue script scores jobs by: no
-- two hosts' clocks are compared.
--
-- `take` = {worker id, lease ms, the queue, the abort set, in-progress prefix, job prefix,
-- retry prefix}. Returns, per claimed job (at most `room`, in order):
-- {its id, its score, its record (false once it expired), its try, 1 if it was aborted before it
-- started, now by Redis's clock (its wait in the queue is now minus its score)}.
local function claim_jobs(ids, room, take)
  local worker, lease, queue, abort = take[1], take[2], take[3], take[4]
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local claimed = {}
  for _, id in ipairs(ids) do
    if room <= 0 then break end
    local in_progress = take[5] .. id
    if redis.call('SET', in_progress, worker, 'PX', lease, 'NX') then
      local score = redis.call('ZSCORE', queue, id)
      if score and tonumber(score) <= now then
        local record = redis.call('GET', take[6] .. id)
        local retry = take[7] .. id
        local try = redis.call('INCR', retry)
        redis.call('EXPIRE', retry, 88400)
        claimed[#claimed + 1] = {id, score, record, try, redis.call('ZREM', abort, id), now}
        room = room - 1
      else
        redis.call('DEL', in_progress)
      end
    end
  end
  return claimed
end
