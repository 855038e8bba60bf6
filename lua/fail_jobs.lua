-- fail_jobs.lua: record jobs that ended without success: in one step each leaves
-- in-progress and enters retry or dead (a failure), or schedule (deferred: a rate or
-- concurrency limiter was full, so it did not run); failures are counted, deferrals
-- are not; the dead set is trimmed by age and size.
--
-- KEYS[1]  inprogress:<q>:<node>
-- KEYS[2]  retry
-- KEYS[3]  dead
-- KEYS[4]  stat:processed          KEYS[5]  stat:processed:<yyyy-mm-dd>  KEYS[6]  stat:processed:<q>
-- KEYS[7]  stat:failed             KEYS[8]  stat:failed:<yyyy-mm-dd>     KEYS[9]  stat:failed:<q>
-- KEYS[10] schedule
-- ARGV[1]  now (unix seconds)
-- ARGV[2]  seconds a dead job is kept
-- ARGV[3]  most jobs kept in dead
-- ARGV[4]  seconds to keep the per-day counters (set when a counter is created)
-- ARGV[5..] groups of four: original text (as stored in in-progress), target
--           ('retry', 'dead' or 'schedule'), score (unix seconds), the text to store
--           (built by Python)
--
-- Returns: how many jobs were recorded. A job that is no longer in the in-progress
-- list (recovered by another node) is not added to retry, dead or schedule: it is
-- queued again already, and adding it would run it twice more.

local recorded = 0
local buried = false
local ran = 0
for i = 5, #ARGV, 4 do
  local deferred = ARGV[i + 1] == 'schedule'
  if not deferred then
    ran = ran + 1
  end
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) > 0 then
    if ARGV[i + 1] == 'dead' then
      redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i + 3])
      buried = true
    elseif deferred then
      redis.call('ZADD', KEYS[10], ARGV[i + 2], ARGV[i + 3])
    else
      redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i + 3])
    end
    recorded = recorded + 1
  end
end
if buried then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
end
if ran > 0 then
  local ttl = ARGV[4]
  redis.call('INCRBY', KEYS[4], ran)
  if redis.call('INCRBY', KEYS[5], ran) == ran then redis.call('EXPIRE', KEYS[5], ttl) end
  redis.call('INCRBY', KEYS[6], ran)
  redis.call('INCRBY', KEYS[7], ran)
  if redis.call('INCRBY', KEYS[8], ran) == ran then redis.call('EXPIRE', KEYS[8], ttl) end
  redis.call('INCRBY', KEYS[9], ran)
end
return recorded
