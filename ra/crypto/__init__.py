"""Key material the RA makes for offices: key pairs and their sealing, PKCS#12 files."""
