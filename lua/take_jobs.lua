-- take_jobs.lua: move up to N pending jobs of a queue into a node's in-progress list.
--
-- The reliable fetch: a job is never only in flight; it leaves queue:<q> and enters
-- inprogress:<q>:<node> in one step. Job texts are moved as opaque strings (never
-- decoded: cjson would turn [] into {} and mangle big integers).
--
-- KEYS[1]  queue:<q>              pending jobs; enqueue LPUSHes, so the oldest is rightmost
-- KEYS[2]  inprogress:<q>:<node>  this node's unacknowledged jobs
-- KEYS[3]  verk:paused            set of queues paused cluster-wide
-- ARGV[1]  N, the most jobs to take (a WorkersManager asks for at most 2,000 at once)
-- ARGV[2]  q, the queue's name
-- ARGV[3]  least (optional, default 1): take nothing unless at least this many jobs
--          wait. A WorkersManager looking for a backlog while a worker on standby
--          takes jobs one by one leaves it a few: it runs them sooner than a batch.
--
-- Returns: the job texts taken, oldest first (an empty array when the queue is empty
-- or holds fewer than least); nil when the queue is paused (nothing is taken).
-- They enter the in-progress list at its head, so its tail holds the oldest (as BLMOVE
-- RIGHT LEFT would leave them): jobs taken together lie together, oldest nearest the
-- tail, and ack_jobs.lua removes them as a run.

if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then
  return false
end
local n = tonumber(ARGV[1])
local least = tonumber(ARGV[3] or '1')
if least > 1 and redis.call('LLEN', KEYS[1]) < least then
  return {}
end
local items = redis.call('LRANGE', KEYS[1], -n, -1)
local count = #items
if count == 0 then
  return {}
end
local oldest_first = {}
for i = count, 1, -1 do
  oldest_first[#oldest_first + 1] = items[i]
end
-- Push before trimming, in chunks (unpack fails past ~8000 values): a script that
-- errors half-way is not rolled back, and trimming first would lose the jobs.
for i = 1, count, 1000 do
  redis.call('LPUSH', KEYS[2], unpack(oldest_first, i, math.min(i + 999, count)))
end
redis.call('LTRIM', KEYS[1], 0, -count - 1)
return oldest_first
