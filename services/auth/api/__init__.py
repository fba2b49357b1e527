"""The auth service's HTTP routes, one blueprint per concern."""
