-- ack_jobs.lua: record jobs that ran successfully: drop them from in-progress, count them.
--
-- KEYS[1]  inprogress:<q>:<node>
-- KEYS[2]  stat:processed
-- KEYS[3]  stat:processed:<yyyy-mm-dd>
-- KEYS[4]  stat:processed:<q>
-- ARGV[1]  seconds to keep the per-day counter (set when the counter is created)
-- ARGV[2..] job texts, exactly as they are stored in the in-progress list
--
-- Returns: how many of the jobs were still in the in-progress list and were removed.
-- A job no longer there (recovered by another node after this node's lease expired)
-- is left alone: it is queued again and will run again, which is the at-least-once rule.
-- Every execution is counted in stat:processed, as Sidekiq counts.

local removed = 0
for i = 2, #ARGV do
  removed = removed + redis.call('LREM', KEYS[1], -1, ARGV[i])
end
local ran = #ARGV - 1
if ran > 0 then
  redis.call('INCRBY', KEYS[2], ran)
  if redis.call('INCRBY', KEYS[3], ran) == ran then
    redis.call('EXPIRE', KEYS[3], ARGV[1])
  end
  redis.call('INCRBY', KEYS[4], ran)
end
return removed
