"""authlib's synchronous OAuth2 server, adapted once to the async service (see ``bridge``)."""
