"""Rate-change proposals: reviewed, content-hashed rate changes with their impact on real
usage, a second approver, and effective dates (issue 14).

- :mod:`hubkit.proposals.build`: proposed changes from every change path (edit, delete,
  batch create, bulk preview, catalog sync plan, CSV, revert of an applied proposal);
- :mod:`hubkit.proposals.impact`: a usage window replayed under the rates in force and
  under the proposed rates (:class:`Impact`);
- :mod:`hubkit.proposals.workflow`: :func:`propose` (impact computed and stored with the
  proposal), the ``propose_*`` shortcuts and :func:`apply_due` (the scheduled job's step).

The storage, the states and the rules (maker ≠ checker, hash, staleness, apply once) are
the store's: :mod:`hubkit.store.proposals` (``Store.create_proposal``,
``approve_proposal``, ``reject_proposal``, ``apply_proposal``, ``list_proposals`` …),
whose value types are re-exported here.
"""

from __future__ import annotations

from hubkit.proposals.build import (
    batch_create_changes,
    bulk_changes,
    catalog_changes,
    csv_changes,
    delete_change,
    edit_change,
    revert_changes,
)
from hubkit.proposals.impact import (
    Impact,
    UsageWindow,
    compute_impact,
    proposed_rates,
    proposed_timeline,
    usage_window,
)
from hubkit.proposals.views import changes_frame, events_frame, proposals_frame
from hubkit.proposals.workflow import (
    ApplyDueReport,
    apply_due,
    assess,
    propose,
    propose_batch_create,
    propose_bulk,
    propose_catalog_sync,
    propose_csv,
    propose_delete,
    propose_edit,
    propose_revert,
)
from hubkit.store.proposals import (
    Proposal,
    ProposalAction,
    ProposalApplyResult,
    ProposalEvent,
    ProposalSource,
    ProposalState,
    ProposedChange,
    content_hash,
)

__all__ = [
    "ApplyDueReport",
    "Impact",
    "Proposal",
    "ProposalAction",
    "ProposalApplyResult",
    "ProposalEvent",
    "ProposalSource",
    "ProposalState",
    "ProposedChange",
    "UsageWindow",
    "apply_due",
    "assess",
    "batch_create_changes",
    "bulk_changes",
    "catalog_changes",
    "changes_frame",
    "compute_impact",
    "content_hash",
    "csv_changes",
    "delete_change",
    "edit_change",
    "events_frame",
    "proposals_frame",
    "propose",
    "propose_batch_create",
    "propose_bulk",
    "propose_catalog_sync",
    "propose_csv",
    "propose_delete",
    "propose_edit",
    "propose_revert",
    "proposed_rates",
    "proposed_timeline",
    "revert_changes",
    "usage_window",
]
