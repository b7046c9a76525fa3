"""Notices and mail: written in the caller's transaction, sent through the outbox."""
