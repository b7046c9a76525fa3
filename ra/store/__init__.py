"""Persistence of the RA: the database session and its errors, the models, the migrations, the
sealed secret vault and the hash-chained audit log."""
