#!/bin/sh
# redis-server with protected mode off by default (the official image compiles it so); a
# config file stays the first argument, and options given later still win.
case "${1:-}" in
    ""|-*) exec /usr/bin/redis-server --protected-mode no "$@" ;;
    *) conf=$1; shift; exec /usr/bin/redis-server "$conf" --protected-mode no "$@" ;;
esac
