"""A SmartAPI-compatible paper exchange: same routes, shapes, login and sockets as Angel One's."""
