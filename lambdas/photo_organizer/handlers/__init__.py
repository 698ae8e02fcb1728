"""Thin Lambda entry points: parse, authorise, delegate to a service."""
