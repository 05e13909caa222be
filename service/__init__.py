"""tickguard service: the Starlette app and everything that does I/O."""
