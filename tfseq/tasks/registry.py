"""The one place tasks are registered: each line below makes a task known to the command line, the config and
the run folders. Adding a task is one module in tfseq/tasks/ and one line here."""
from __future__ import annotations

from tfseq.errors import UserError
from tfseq.tasks import classify, lm, sentiment, tag
from tfseq.tasks.base import TaskSpec

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    lm.CHARLM_SPEC,
    lm.SPEC,
    sentiment.SPEC,
    classify.SPEC,
    tag.SPEC,
)}


def get_task(name: str) -> TaskSpec:
    """The TaskSpec of a task name; UserError naming the known tasks for another."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name]
