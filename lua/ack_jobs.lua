-- ack_jobs.lua: record jobs that ran successfully: drop them from in-progress, count them.
--
-- KEYS[1]  inprogress:<q>:<node>
-- KEYS[2]  stat:processed
-- KEYS[3]  stat:processed:<yyyy-mm-dd>
-- KEYS[4]  stat:processed:<q>
-- ARGV[1]  seconds to keep the per-day counter (set when the counter is created)
-- ARGV[2..] job texts, exactly as they are stored in the in-progress list; fastest
--           oldest first (in the order they were taken)
--
-- Returns: how many of the jobs were still in the in-progress list and were removed.
-- A job no longer there (recovered by another node after this node's lease expired)
-- is left alone: it is queued again and will run again, which is the at-least-once rule.
-- Every execution is counted in stat:processed, as Sidekiq counts.
--
-- Each job given removes one occurrence of its text, as `LREM key -1 text` would, but
-- a run of jobs taken together is removed in a few calls, not one LREM each: an LREM
-- cost a Lua call and a scan from the tail past every older job still running. The
-- list is newest first (take_jobs LPUSHes), so a run given oldest first lies at
-- indexes pos, pos-1, pos-2... where pos is the tail-most index of its first job.

local key = KEYS[1]
local n = #ARGV
local FEW = 8                   -- runs shorter than this go one LREM a job
local MOST = 1000               -- most values per LRANGE window and per RPUSH (unpack's limit)
local KEEP_MAX = 20000          -- most older jobs set aside and pushed back to cut a run out
local WINDOW_BYTES = 1048576    -- about the most bytes compared per LRANGE window
local KEEP_BYTES = 2097152      -- about the most bytes set aside to cut a run out

-- The length of the run of ARGV[i..] found at indexes pos, pos-1, ... (ARGV[i] is at
-- pos), compared in windows that grow from 16 values (and hold about WINDOW_BYTES at
-- most, judging by the size of ARGV[i]), so jobs acked one by one cost a small LRANGE
-- each, not a long one.
local function run_length(i, pos)
  local run, step = 1, 16
  local most = math.max(1, math.min(MOST, math.floor(WINDOW_BYTES / #ARGV[i])))
  while i + run <= n and pos - run >= 0 do
    local want = math.min(n - i - run + 1, step, pos - run + 1, most)
    local window = redis.call('LRANGE', key, pos - run - want + 1, pos - run)
    local matched = 0
    while matched < #window and window[#window - matched] == ARGV[i + run + matched] do
      matched = matched + 1
    end
    run = run + matched
    if matched < #window then
      break
    end
    step = step * 4
  end
  return run
end

local removed = 0
local i = 2
while i <= n do
  local looked, pos = n - i + 1 >= FEW, false
  if looked then
    pos = redis.call('LPOS', key, ARGV[i], 'RANK', -1)
  end
  local run = pos and run_length(i, pos) or 1
  local older = pos and (redis.call('LLEN', key) - 1 - pos) or 0
  if looked and not pos then
    -- not in progress any more: nothing to remove
  elseif not pos or run < FEW or older > KEEP_MAX or older * #ARGV[i] > KEEP_BYTES then
    for k = i, i + run - 1 do
      removed = removed + redis.call('LREM', key, -1, ARGV[k])
    end
  else
    if older == 0 then
      redis.call('LTRIM', key, 0, -run - 1)
    else
      -- Set the older jobs aside, cut the run off the tail, push them back in order.
      -- Redis lets a script that has written go on writing when memory is short, so
      -- the RPUSH cannot fail after the LTRIM.
      local kept = redis.call('LRANGE', key, pos + 1, -1)
      if pos - run < 0 then
        redis.call('DEL', key) -- the run reached the head (LTRIM 0 -1 would keep all)
      else
        redis.call('LTRIM', key, 0, pos - run)
      end
      for k = 1, #kept, MOST do
        redis.call('RPUSH', key, unpack(kept, k, math.min(k + MOST - 1, #kept)))
      end
    end
    removed = removed + run
  end
  i = i + run
end

local ran = n - 1
if ran > 0 then
  redis.call('INCRBY', KEYS[2], ran)
  if redis.call('INCRBY', KEYS[3], ran) == ran then
    redis.call('EXPIRE', KEYS[3], ARGV[1])
  end
  redis.call('INCRBY', KEYS[4], ran)
end
return removed
