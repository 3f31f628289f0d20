"""Many items: the :class:`~resumable.Job` handle, its runners, per-item work, the ledger, sync
and the inputs (templates, links files, object lists, checksum files, sharding).

Below the public API (:mod:`resumable.api`), above the engine: a batch takes an
:class:`~resumable.engine.Engine` and never imports the API module. Nothing is imported here,
so ``import resumable.batch.templates`` loads the template functions alone.
"""
