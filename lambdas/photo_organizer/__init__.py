"""Photo Organizer: the domain package shared by the Lambda handlers, the Glue jobs and the local backend."""

__version__ = "0.1.0"
