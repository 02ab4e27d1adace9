"""Running a planned job: stage, start, watch (a detached monitor), stop, logs, the live view."""
