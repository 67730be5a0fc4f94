"""Runtime: executes one run; context variables hold the current run and span."""
