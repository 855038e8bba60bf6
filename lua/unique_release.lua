-- unique_release.lua: free unique jobs' locks, each only if its job still holds it.
--
-- Called when a unique job starts (unique_until "start") or succeeds or dies
-- (unique_until "success"). A lock that expired and was taken by a newer job holds
-- that job's jid, and is left alone.
--
-- KEYS[1..n]  verk:unique:<digest>  the locks
-- ARGV[1..n]  the jid of the job that took each lock
--
-- Returns: how many locks were freed.

local freed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('DEL', KEYS[i])
    freed = freed + 1
  end
end
return freed
