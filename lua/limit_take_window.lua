-- limit_take_window.lua: take a Window limiter for one job, if fewer than its limit
-- took it in the last `per` seconds (a sliding window: the time of each take is kept
-- until it is `per` seconds old).
--
-- Times are Redis's own clock (TIME), so nodes whose clocks differ agree. The
-- limiter's spec is noted in its hash for `verk-actors limits` (kept 7 days after its
-- last use).
--
-- KEYS[1]  verk:limits                 the set of limiter names
-- KEYS[2]  verk:limit:<name>           hash: kind, limit, per, used_at
-- KEYS[3]  verk:limit:<name>:window    sorted set: take -> when (unix seconds)
-- ARGV[1]  the limiter's name
-- ARGV[2]  the take: "<jid>@<node>/<pid>.<n>", unique to this take
-- ARGV[3]  the limit (most takes in any `per` seconds)
-- ARGV[4]  per, seconds
--
-- Returns: {1, 0} when taken; {0, ms} when the window is full, ms being the time until
-- its oldest take leaves it.

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[3])
local per = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - per)
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'kind', 'window', 'limit', ARGV[3], 'per', ARGV[4],
  'used_at', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[2], 604800)
if redis.call('ZCARD', KEYS[3]) >= limit then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {0, math.ceil((tonumber(first[2]) + per - now) * 1000)}
end
redis.call('ZADD', KEYS[3], string.format('%.6f', now), ARGV[2])
redis.call('PEXPIRE', KEYS[3], math.ceil(per * 1000) + 1000)
return {1, 0}
