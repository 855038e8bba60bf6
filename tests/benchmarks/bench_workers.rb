# The standard benchmark's jobs for Sidekiq, loaded by `sidekiq -r bench_workers.rb`.
#
# Twins of the Python workers in verk_actors/bench/workload.py and async_workload.py:
# same class names, same queue (verk-bench), same work, so the jobs verk_actors'
# Client.enqueue_many pushes run on either side. The counter server is the Redis in VERK_BENCH_COUNTER_URL.

require "sidekiq"
require "redis"

# Per-job log lines ("start", "done") cost Sidekiq time; the verk_actors node of the
# benchmark logs at WARNING, so Sidekiq does too.
Sidekiq.configure_server do |config|
  config.logger.level = Logger::WARN
end

# One connection to the counter server per Sidekiq thread (threads run jobs at once).
module BenchCounter
  def self.redis
    Thread.current[:bench_counter] ||= Redis.new(url: ENV.fetch("VERK_BENCH_COUNTER_URL"))
  end
end

# The standard job: one INCR of bench:done on the counter server.
class BenchIncr
  include Sidekiq::Worker
  sidekiq_options queue: "verk-bench", retry: false

  def perform
    BenchCounter.redis.incr("bench:done")
  end
end

# Records how long after `enqueued` (CLOCK_MONOTONIC seconds, the clock of Python's
# time.monotonic()) it started.
class BenchPickup
  include Sidekiq::Worker
  sidekiq_options queue: "verk-bench", retry: false

  def perform(enqueued)
    picked = Process.clock_gettime(Process::CLOCK_MONOTONIC) - enqueued
    BenchCounter.redis.rpush("bench:pickup", picked.to_s)
  end
end

# Waits `seconds` (as on the network), then the standard INCR: the twin of BenchSleep
# (time.sleep in a thread) and of BenchAsyncSleep (await asyncio.sleep); a Sidekiq
# thread runs either the same way, sleeping without the GVL.
class BenchSleep
  include Sidekiq::Worker
  sidekiq_options queue: "verk-bench", retry: false

  def perform(seconds)
    sleep(seconds)
    BenchCounter.redis.incr("bench:done")
  end
end

# The same job under the async twin's name (its options are inherited).
class BenchAsyncSleep < BenchSleep
end
