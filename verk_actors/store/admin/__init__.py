"""The operators' reads and writes of Redis: queues, the retry/scheduled/dead sets,
stats, pausing, nodes. The CLI and applications call these; no node is needed."""
