"""Accounts and who they are: office, agent and staff accounts, their passwords and password rules,
sign-in (lockout, TOTP), account administration and the CSV import."""
