"""Auth: the suite's OAuth2 authorization server (authlib grants, joserfc tokens), users and clients."""
