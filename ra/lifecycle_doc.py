"""``python -m ra.lifecycle_doc``: print docs/lifecycle.md from the transition table."""

from __future__ import annotations

from ra.lifecycle import EVENT_LABELS_JA, LABELS_JA, NUMBERS, TRANSITIONS, Status, mermaid

HEADER = """# The application lifecycle

The ten statuses of an application and every legal move between them. This page is made from
the transition table in `ra/lifecycle.py` (the only place that changes a status);
`tests/ra/test_lifecycle_doc.py` fails when the two disagree. Regenerate it with
`python -m ra.lifecycle_doc > docs/lifecycle.md`.

Every other (status, event, actor) combination is refused with a clear message and changes
nothing. Every move is a guarded UPDATE (status and version as read): when two operators act
at once, exactly one wins and the other is told that someone else changed the application
first. Every move writes an audit record in the same transaction.

One move goes beyond docs/product.md §5: `ca_refused` (4 発行待ち → 9 却下待ち), when the
CA refuses a request (a bad CSR, a subject its profile does not allow); the rejection is then
processed and the applicant notified with the CA's reason, as for a rejection by staff.

A second one is `rerequest_issuance` (4 発行待ち → 3 発行依頼中), by an admin or the RA operator
(`shomei ra re-request BATCH_ID`), only for an application whose batch the CA answered
"abandoned" (it stopped the batch before signing the request, see
docs/batch-link-operations.md): the next dispatch sends the same request again, and the CA
answers with the certificate it may already have signed for it, never a second one.
"""


def render() -> str:
    rows = ["| event | who | from | to |", "| --- | --- | --- | --- |"]
    for t in TRANSITIONS.values():
        source = "(new)" if t.source is None else f"{NUMBERS[t.source]} {LABELS_JA[t.source]}"
        if isinstance(t.target, Status):
            target = f"{NUMBERS[t.target]} {LABELS_JA[t.target]}"
        else:
            target = "1 発行依頼待ち (office) or 2 入金待ち (agent)"
        actors = ", ".join(sorted(a.value for a in t.actors))
        rows.append(
            f"| {EVENT_LABELS_JA[t.event]} (`{t.event.value}`) | {actors} | {source} | {target} |"
        )
    return HEADER + "\n" + "\n".join(rows) + "\n\n```mermaid\n" + mermaid() + "```\n"


if __name__ == "__main__":
    print(render(), end="")
