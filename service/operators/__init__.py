"""The people who run tickguard: operators with a role, their passwords and API tokens
(`OPERATORS_FILE`), and their dashboard sessions (in the store)."""
from service.operators.book import (ROLES, TOKEN_PREFIX, Operator, OperatorBook, OperatorsFileError, demo_book,
                                    valid_name)
from service.operators.sessions import SESSION_TTL_S, SessionStore

__all__ = ["ROLES", "SESSION_TTL_S", "TOKEN_PREFIX", "Operator", "OperatorBook", "OperatorsFileError", "SessionStore",
           "demo_book", "valid_name"]
