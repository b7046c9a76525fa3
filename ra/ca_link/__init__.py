"""The link to the CA (docs/product.md §10): request batches out, result batches and CRLs in,
the RA's link identity, the inline CA and the recovery of interrupted batches."""
