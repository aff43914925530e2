"""The scheduler service: job specs, the action queue consumer, the DAG and federated job state."""
