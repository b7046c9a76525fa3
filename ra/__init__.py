"""The registration authority: the lifecycle of applications and certificates (issue #3)."""
