"""Operations: submitting runs, workers, heartbeats, recovery, deployments."""
