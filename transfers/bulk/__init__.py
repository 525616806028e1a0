"""Bulk actions on every contact a table view matches, as background jobs.

| module | what |
| --- | --- |
| `runner` | one run of a job: keyset batches in id order, each with the job's progress |
| `services` | start, stop, undo, resume, dismiss; stalled jobs queued again |
| `selectors` | the job a member sees above the table |
| `views` | that notice (htmx polls it while the job runs) and its buttons |

The action itself (set-based statements, audit entries) is `transfers.bulk.actions`.
"""
