"""CDK stacks of Photo Organizer: storage, auth, ingest and api, one concern each."""
