"""Example plug-ins: copy one to start your own (see docs/plugins.md)."""
