-- renew_lease.lua: renew a node's heartbeat lease, or say why it cannot be renewed.
--
-- A node's lease holds the random epoch the node drew when it started; while the
-- lease exists no other node recovers the node's in-progress jobs.
--
-- KEYS[1]  verk:node:<node>    the lease
-- ARGV[1]  epoch               this node's value
-- ARGV[2]  ttl                 milliseconds the renewed lease lives
--
-- Returns: 1 renewed; 0 the lease had expired (other nodes may have recovered this
-- node's jobs) and is now claimed again; -1 another process holds the lease under
-- this node id (two nodes share an id), left untouched.

local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 0
end
return -1
