-- cron_enqueue.lua: claim one tick of a cron entry and enqueue its job, in one step.
--
-- Every node computes the ticks of every entry and calls this for each; the tick key
-- (SET NX) lets exactly one call per tick enqueue, however many nodes race, and the
-- claim and the enqueue cannot be separated by a crash. The entry's hash keeps the
-- last tick enqueued (the highest), its job and when.
--
-- KEYS[1]  verk:cron:<name>:<tick>  the claim on this tick
-- KEYS[2]  verk:cron:<name>         the entry's hash (last_tick, last_jid, last_at, since)
-- KEYS[3]  queue:<q>                where the job goes
-- KEYS[4]  queues                   the set of queue names
-- ARGV[1]  tick (unix seconds, whole)
-- ARGV[2]  the job text (built in Python, with cron_entry and cron_tick fields)
-- ARGV[3]  q, the queue's name
-- ARGV[4]  seconds the claim is kept (longer than any node can be late to a tick)
-- ARGV[5]  "due": a tick on time; "catch_up": a tick a starting node found missed,
--          enqueued only if it is later than the last tick enqueued (or, for an entry
--          that never ran, than when a node first had it: "since")
-- ARGV[6]  the job's jid
-- ARGV[7]  now (unix seconds)
--
-- Returns: 1 if this call enqueued the tick's job, 0 if it was claimed already or
-- too old to tell (a due tick older than the last one by half the claim's lifetime,
-- whose claim may have expired).

local tick = tonumber(ARGV[1])
local last = redis.call('HGET', KEYS[2], 'last_tick')
last = last and tonumber(last)
if ARGV[5] == 'catch_up' then
  local since = last or tonumber(redis.call('HGET', KEYS[2], 'since') or '')
  if since == nil or tick <= since then
    return 0
  end
elseif last and tick < last - tonumber(ARGV[4]) / 2 then
  return 0
end
if not redis.call('SET', KEYS[1], ARGV[6], 'NX', 'EX', ARGV[4]) then
  return 0
end
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
if not last or tick > last then
  redis.call('HSET', KEYS[2], 'last_tick', ARGV[1], 'last_jid', ARGV[6], 'last_at', ARGV[7])
end
return 1
