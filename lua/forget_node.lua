-- forget_node.lua: remove a dead node's registration once nothing of it is left.
--
-- Run after its in-progress jobs were moved back. Does nothing while the node's
-- lease exists (it came back) or while any of its in-progress lists still holds a job.
--
-- KEYS[1]  verk:node:<node>            the lease
-- KEYS[2]  verk:node:<node>:queues     queues whose in-progress lists it may have
-- KEYS[3]  verk_nodes                  the set of node ids
-- KEYS[4]  verk:node:<node>:info       its description
-- KEYS[5]  processes                   Sidekiq's set of process identities
-- KEYS[6]  <identity>                  its Sidekiq process hash
-- KEYS[7]  <identity>:workers          its Sidekiq busy-workers hash
-- KEYS[8..] inprogress:<q>:<node>      one per queue in KEYS[2] (read by the caller)
-- ARGV[1]  node id
-- ARGV[2]  its Sidekiq process identity ('' if unknown)
--
-- Returns: 1 forgotten; 0 left alone (alive again, or jobs remain).

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 8, #KEYS do
  if redis.call('LLEN', KEYS[i]) > 0 then
    return 0
  end
end
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('SREM', KEYS[3], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SREM', KEYS[5], ARGV[2])
  redis.call('DEL', KEYS[6], KEYS[7])
end
return 1
