"""CRLs as data (RFC 5280 §5): a builder that scales to millions of entries, a reader that
checks signature and times, and an O(1) revocation index shared by the RA and the verifier."""
