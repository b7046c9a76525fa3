"""The offline CA: key custody, certificate profiles, issuance, request batches and CRLs.

It only signs what the RA already decided.  It runs on an offline machine and therefore
imports neither Flask nor SQLAlchemy; its ledger is a plain SQLite file.
"""
