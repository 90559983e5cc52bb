"""Liveness of background work: one heartbeat table for every job a worker runs
(training runs, folds, registration, prediction passes, exports, imports,
recording preprocessing), the workers' own presence per queue, and one reaper.

The job's *state* stays on its own row (``annotation.Job``, ``Recording``,
``registry.TrainingRun``/``TrainingFold``); whether anyone is still working on it
is answered here, the same way for all of them. Apps register what a lost job
means for them (``jobs.reaper.kind_register``); this package imports no app.
"""
