"""Speed runs that print figures (``python -m tests.benchmarks.<name>``); not tests."""
