-- enqueue_due.lua: move chosen members of a sorted set (schedule, retry or dead) to
-- their queues, each only if it is still in the set.
--
-- The caller reads due members (ZRANGEBYSCORE), builds each new text in Python (with
-- enqueued_at set; never through cjson) and calls this. A member that another node or
-- client moved first is skipped, so no job is enqueued twice. Malformed members go to
-- dead instead of blocking the set. Queue keys come from the job texts, so the caller
-- derives them and passes them all in KEYS.
--
-- KEYS[1]  the sorted set the members leave (schedule, retry or dead)
-- KEYS[2]  queues (the set of queue names)
-- KEYS[3]  dead
-- KEYS[4..] queue:<q> lists, one per queue named in ARGV
-- ARGV[1]  now (unix seconds), the score of a member sent to dead
-- ARGV[2..] groups of four: member (as stored), destination (an index into KEYS: 3 for
--           dead, 4 or more for a queue list), new text, queue name
--
-- Returns: how many members were moved.

local moved = 0
for i = 2, #ARGV, 4 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local dest = tonumber(ARGV[i + 1])
    if dest == 3 then
      redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i + 2])
    else
      redis.call('LPUSH', KEYS[dest], ARGV[i + 2])
      redis.call('SADD', KEYS[2], ARGV[i + 3])
    end
    moved = moved + 1
  end
end
return moved
