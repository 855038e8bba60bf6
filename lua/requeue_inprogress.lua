-- requeue_inprogress.lua: move a batch of a node's in-progress jobs back to the queue.
--
-- Run at start (a node's own leftovers), at clean shutdown, and by any live node for a
-- node whose heartbeat lease has expired. Callers repeat it while jobs remain; each
-- batch is atomic, so two nodes recovering the same dead node never move a job twice.
--
-- KEYS[1]  inprogress:<q>:<node>
-- KEYS[2]  queue:<q>
-- KEYS[3]  (optional) verk:node:<node>, the node's lease: when given and present, the
--          node is alive and nothing is moved
-- ARGV[1]  N, the most jobs to move in this batch
--
-- Returns: {moved, remaining}; moved is -1 when the lease exists. The jobs land at the
-- queue's consuming end, oldest nearest it, so they run next and in the order taken.

if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  return {-1, redis.call('LLEN', KEYS[1])}
end
local n = tonumber(ARGV[1])
-- The newest jobs (the list's head) move first: each later batch is older and lands
-- nearer the consuming end, so across batches the oldest job still runs first.
local items = redis.call('LRANGE', KEYS[1], 0, n - 1)
local count = #items
if count == 0 then
  return {0, 0}
end
for i = 1, count, 1000 do  -- in chunks: unpack fails past ~8000 values
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, count)))
end
redis.call('LTRIM', KEYS[1], count, -1)
return {count, redis.call('LLEN', KEYS[1])}
