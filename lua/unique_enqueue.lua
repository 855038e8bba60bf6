-- unique_enqueue.lua: take a unique job's lock and enqueue (or schedule) the job, in
-- one step; a duplicate takes nothing and writes nothing.
--
-- The lock names the job by its class, queue and arguments (a digest made in
-- Python); it holds the jid of the job that took it and expires on its own, so a
-- lost node cannot hold it for ever. It is freed early by unique_release.lua when the
-- job starts or succeeds, as the job's unique_until says.
--
-- KEYS[1]  verk:unique:<digest>  the lock
-- KEYS[2]  queue:<q> to enqueue now, or schedule to enqueue later
-- KEYS[3]  queues                 the set of queue names (added to when enqueued now)
-- ARGV[1]  the job's jid
-- ARGV[2]  milliseconds the lock lives
-- ARGV[3]  the job text
-- ARGV[4]  q, the queue's name
-- ARGV[5]  "" to enqueue now, else the schedule score (unix seconds to run at)
--
-- Returns: {1, jid} when the job was written, {0, holder's jid} when the lock was
-- held (nothing written).

if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('GET', KEYS[1])}
end
if ARGV[5] == '' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
end
return {1, ARGV[1]}
