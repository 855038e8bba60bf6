"""Helpers and Ruby scripts for the Sidekiq interoperability tests."""
