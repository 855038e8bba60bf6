-- limit_take_concurrent.lua: take a slot of a Concurrent limiter for one job, if fewer
-- than its limit are held; a slot is leased, so a dead node's slots come back.
--
-- Times are Redis's own clock (TIME), so nodes whose clocks differ agree on leases.
-- Slots whose lease has ended are dropped first. The limiter's spec is noted in its
-- hash for `verk-actors limits` (kept 7 days after its last use). A slot is given back
-- with ZREM of its holder when the job ends (store/limits.py), one command.
--
-- KEYS[1]  verk:limits                     the set of limiter names
-- KEYS[2]  verk:limit:<name>               hash: kind, limit, lease, used_at
-- KEYS[3]  verk:limit:<name>:concurrent    sorted set: holder -> end of its lease
-- ARGV[1]  the limiter's name
-- ARGV[2]  the holder: "<jid>@<node>/<pid>.<n>", unique to this take
-- ARGV[3]  the limit (most slots held at once)
-- ARGV[4]  the lease, seconds
--
-- Returns: {1, 0} when the slot was taken; {0, ms} when all are held, ms being the
-- time until the first lease ends (a bound, not a promise: slots usually come back
-- sooner, when their jobs end).

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'kind', 'concurrent', 'limit', ARGV[3], 'lease', ARGV[4],
  'used_at', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[2], 604800)
if redis.call('ZCARD', KEYS[3]) >= limit then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {0, math.ceil((tonumber(first[2]) - now) * 1000)}
end
redis.call('ZADD', KEYS[3], string.format('%.6f', now + lease), ARGV[2])
local keep = math.ceil(lease * 1000) + 1000
if redis.call('PTTL', KEYS[3]) < keep then
  redis.call('PEXPIRE', KEYS[3], keep)
end
return {1, 0}
