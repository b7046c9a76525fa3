"""The click groups that command modules attach to (``shomei ca …``)."""

from __future__ import annotations

import click


@click.group("ca")
def ca_group() -> None:
    """Offline CA operator: ceremonies, signing request batches, CRLs, ledger."""
