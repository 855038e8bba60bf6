-- requeue_jobs.lua: give given in-progress jobs back to their queue, to run next.
--
-- Used for jobs a node took but did not start (a worker pool that restarted, a queue
-- that stops). Each job moves only if it is still in the in-progress list, so a job
-- recovered meanwhile by another node is not queued twice.
--
-- KEYS[1]  inprogress:<q>:<node>
-- KEYS[2]  queue:<q>
-- ARGV[1..] job texts, exactly as stored
--
-- Returns: how many jobs were moved. They go to the consuming (right) end of the
-- queue so that the first one given is taken first, then the second...

local moved = 0
for i = #ARGV, 1, -1 do
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) > 0 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
