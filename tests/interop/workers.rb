# Sidekiq workers for the interoperability tests, loaded by `sidekiq -r workers.rb`.
#
# Their names match the Python workers in tests/interop_jobs.py, so a job can run on
# either side. Each run appends one JSON entry to the list "interop:ran", in the same
# shape as the Python workers: {"runner", "class", "jid", "args"}.

require "json"
require "sidekiq"

# Check `schedule` and `retry` about every second (Sidekiq's default is every 5 s
# after a 10 s start-up wait), so jobs scheduled by verk_actors run here soon.
Sidekiq.configure_server do |config|
  config.options[:poll_interval_average] = 1
end

module InteropRecording
  RAN = "interop:ran"

  def record(args)
    entry = {"runner" => "sidekiq", "class" => self.class.name, "jid" => jid, "args" => args}
    Sidekiq.redis { |conn| conn.rpush(RAN, Sidekiq.dump_json(entry)) }
  end
end

# Records its arguments.
class InteropRecord
  include Sidekiq::Worker
  include InteropRecording

  def perform(*args)
    record(args)
  end
end

# Records its arguments, then raises (the Python worker of this name succeeds).
class InteropSidekiqFails
  include Sidekiq::Worker
  include InteropRecording

  def perform(*args)
    record(args)
    raise ArgumentError, "sidekiq refuses ✗ #{args.first}"
  end
end

# Records its arguments, then raises (on both sides).
class InteropAlwaysFails
  include Sidekiq::Worker
  include InteropRecording

  def perform(*args)
    record(args)
    raise ArgumentError, "sidekiq refuses ✗ #{args.first}"
  end
end
