# Loaded before every Ruby snippet the interoperability tests run (ruby -r prelude.rb).
#
# Sidekiq's client and API read REDIS_URL. INPUT is the JSON document the test sent on
# standard input (nil if none); `emit(value)` hands one JSON value back to the test on
# a marked line of standard output, so warnings printed by gems do not get in the way.

require "json"
require "sidekiq"
require "sidekiq/api"

STDIN_TEXT = $stdin.read
INPUT = STDIN_TEXT.strip.empty? ? nil : JSON.parse(STDIN_TEXT)

def emit(value)
  $stdout.puts("INTEROP-RESULT " + Sidekiq.dump_json(value))
  $stdout.flush
end
