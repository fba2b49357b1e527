"""All SQL of the auth service: plain functions that take a connection."""
