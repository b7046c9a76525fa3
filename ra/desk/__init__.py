"""The console's desk work: the list and its pages, one application's detail, bulk actions, the
passbook search, the CSV export, the audit search and what the console shows of the CA link."""
