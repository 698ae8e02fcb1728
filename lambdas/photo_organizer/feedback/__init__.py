"""Feedback: the user's corrections as typed events, applied to the library at once and recorded for training."""
