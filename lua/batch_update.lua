-- batch_update.lua: record that batch jobs succeeded or failed, and enqueue a batch's
-- callbacks, each exactly once, when its jobs are all done.
--
-- Called in the same write as the acks and failures of the jobs (ack_jobs.lua,
-- fail_jobs.lua). Updates are idempotent: a job acked twice (run again after its node
-- was thought dead) is removed from its batch once.
--
-- KEYS[3i-2]  verk:batch:<bid>          hash: total, callbacks, fired flags
-- KEYS[3i-1]  verk:batch:<bid>:pending  set of the jids that have not succeeded
-- KEYS[3i]    verk:batch:<bid>:failed   set of the pending jids whose last try failed
-- ARGV[1]     now (unix seconds): the callback jobs' enqueued_at
-- ARGV[2]     seconds a finished batch's keys are kept
-- ARGV[2+i]   the i-th update: 's' (succeeded) or 'f' (failed), a space, the jid
--
-- A callback job is stored in the batch hash as its JSON text without enqueued_at and
-- without the closing brace (on_complete_job, on_success_job); the script closes it
-- with ,"enqueued_at":ARGV[1]} (no JSON is decoded here). Its queue's name is stored
-- beside it (on_complete_queue, on_success_queue) and the queue's key (queue:<name>)
-- is derived here from that name, as the Sidekiq layout names queues.
-- "complete" fires once every pending job has failed at least once and the others
-- succeeded (all ran); "success" once every job succeeded (after complete, if it had
-- not fired). A batch with no callback left to fire expires after ARGV[2] seconds.
--
-- Returns: how many callbacks were enqueued.

local keep = tonumber(ARGV[2])
local fired = 0

local function fire(batch, event)
  if redis.call('HSETNX', batch, 'fired_' .. event, ARGV[1]) == 0 then
    return
  end
  local text = redis.call('HGET', batch, 'on_' .. event .. '_job')
  local queue = redis.call('HGET', batch, 'on_' .. event .. '_queue')
  if text and queue then
    redis.call('LPUSH', 'queue:' .. queue, text .. ',"enqueued_at":' .. ARGV[1] .. '}')
    redis.call('SADD', 'queues', queue)
    fired = fired + 1
  end
end

for i = 1, #ARGV - 2 do
  local batch, pending, failed = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local update = ARGV[2 + i]
  local jid = string.sub(update, 3)
  if redis.call('EXISTS', batch) == 1 then
    if string.sub(update, 1, 1) == 's' then
      if redis.call('SREM', pending, jid) == 1 then
        redis.call('HINCRBY', batch, 'succeeded', 1)
      end
      redis.call('SREM', failed, jid)
    elseif redis.call('SISMEMBER', pending, jid) == 1 then
      if redis.call('SADD', failed, jid) == 1 then
        redis.call('HINCRBY', batch, 'failures', 1)
      end
    end
    local left = redis.call('SCARD', pending)
    if left == 0 and redis.call('HSETNX', batch, 'finished_at', ARGV[1]) == 1 then
      fire(batch, 'complete')
      fire(batch, 'success')
      redis.call('EXPIRE', batch, keep)
      redis.call('DEL', pending, failed)
    elseif left == redis.call('SCARD', failed) then
      fire(batch, 'complete')
    end
  end
end
return fired
