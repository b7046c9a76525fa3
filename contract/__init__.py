"""What the RA and the CA agree on: the batch format of their link and the certificate profile.

Both sides import this package and it imports neither of them (nor the CLI), so the RA never
needs the CA's code to speak to it: :mod:`contract.batch` writes and reads the signed request
and result batches (docs/batch-format.md), :mod:`contract.batchjson` reads their JSON strictly,
and :mod:`contract.profile` is the certificate profile, which the CA issues under and the RA
checks applications against (docs/certificate-profile.md).
"""
