"""Scheduled jobs and the scheduler process that runs them."""
