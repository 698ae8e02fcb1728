"""Photo analysis: the one output model every analyzer produces, and the port the services see."""
