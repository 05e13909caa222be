"""`tickguard operator add | remove | list | token | revoke`: the operators of OPERATORS_FILE.

    add NAME [--role trader|viewer]   prompts for the password twice (or reads one line from stdin
                                      with --password-stdin), writes its argon2id hash
    remove NAME                       the operator and every token of theirs
    list                              operators and tokens (never a secret)
    token NAME [--label TEXT]         prints a new API token for NAME, once: keep it
    revoke ID                         revokes a token by its id (tgo_<ID>.…)

The file is OPERATORS_FILE, or `--file PATH`; unset, `.tickguard/operators.json` (and a reminder to
set OPERATORS_FILE to it). A running tickguard reads changes at the next request.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from service.operators.book import ROLES, OperatorBook

__all__ = ["DEFAULT_FILE", "add_commands", "run"]

DEFAULT_FILE = ".tickguard/operators.json"
MIN_PASSWORD = 8


def add_commands(commands: argparse._SubParsersAction) -> None:
    operator = commands.add_parser("operator", help="add operators, issue and revoke their API tokens",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    operator.add_argument("--file", default=None, help=f"default: OPERATORS_FILE, else {DEFAULT_FILE}")
    actions = operator.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an operator (or set their password and role)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="trader", help="trader (default) or viewer")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    actions.add_parser("remove", help="remove an operator and their tokens").add_argument("name")
    actions.add_parser("list", help="the operators and their tokens")
    token = actions.add_parser("token", help="issue an API token for an operator (printed once)")
    token.add_argument("name")
    token.add_argument("--label", default="", help="what the token is for (shown by `list`)")
    actions.add_parser("revoke", help="revoke an API token by its id").add_argument("token_id")


def run(args: argparse.Namespace, configured: str) -> int:
    path = Path(args.file or configured or DEFAULT_FILE)
    if not path.exists():
        if args.action != "add":
            print(f"tickguard: no operators file at {path}: add an operator first", file=sys.stderr)
            return 2
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"operators": {}, "tokens": {}}\n')
        path.chmod(0o600)
    book = OperatorBook(path)
    if args.action == "add":
        password = _password(args.password_stdin)
        if password is None:
            return 2
        book.set_operator(args.name, args.role, password)
        print(f"operator {args.name} ({args.role}) written to {path}")
        if not configured and not args.file:
            print(f"set OPERATORS_FILE={path} for tickguard to use it")
    elif args.action == "remove":
        revoked = book.remove_operator(args.name)
        print(f"operator {args.name} removed, {revoked} token(s) revoked")
    elif args.action == "list":
        for operator in book.operators():
            print(f"{operator.name}\t{operator.role}")
        for token in book.tokens():
            print(f"token {token['id']}\t{token['operator']}\t{token.get('created', '')}\t{token.get('label', '')}")
    elif args.action == "token":
        print(book.issue_token(args.name, args.label))
        print("(shown once; revoke with `tickguard operator revoke ID`, ID being the part between tgo_ and the dot)",
              file=sys.stderr)
    elif args.action == "revoke":
        print(f"token revoked (it was {book.revoke_token(args.token_id)}'s)")
    return 0


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("tickguard: the two passwords differ", file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD:
        print(f"tickguard: a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password
