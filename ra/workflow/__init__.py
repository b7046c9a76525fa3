"""The application's services: apply, reject, pay, request issuance, revoke, download, reissue
the issuance password, and an application's history."""
