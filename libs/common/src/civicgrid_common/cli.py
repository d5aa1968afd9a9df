"""The `civicgrid` command: tools for developers and operators of the platform.

    civicgrid token --role window_clerk --jurisdiction 320104001
        prints a JWT the local stack accepts (signed with .local/keys/signing-key.pem)

Subcommands register themselves in `build_parser`; later tools (e.g. `civicgrid rebuild`)
add theirs the same way.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from civicgrid_common.identity.principal import InvalidPrincipal, Role
from civicgrid_common.identity.tokens import DEFAULT_TTL_SECONDS, mint_local_token

USAGE_ERROR = 2  # argparse's own exit status for bad arguments


def _token(args: argparse.Namespace) -> int:
    try:
        token = mint_local_token(
            args.role,
            args.jurisdiction,
            department=args.department,
            subject=args.subject,
            name=args.name,
            ttl=args.ttl,
        )
    except InvalidPrincipal as exc:
        print(f"civicgrid token: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(token)
    return 0


def _add_token_command(commands: argparse._SubParsersAction) -> None:
    roles = ", ".join(r.value for r in Role)
    cmd = commands.add_parser(
        "token",
        help="print a bearer token the local stack accepts",
        description="Mint a JWT signed with the local stack's key (.local/keys). Use it as "
                    "`Authorization: Bearer <token>`.",
    )
    cmd.add_argument("--role", action="append", required=True, metavar="ROLE",
                     help=f"a role of the principal (repeatable): {roles}")
    cmd.add_argument("--jurisdiction", action="append", required=True, metavar="CODE",
                     help="an administrative code the principal acts in (repeatable): district 6 digits, "
                          "street 9, community 12, grid 15")
    cmd.add_argument("--department", metavar="CODE", help="the department's code (required for --role department)")
    cmd.add_argument("--subject", metavar="S", help="the token's subject (default: derived from role and code)")
    cmd.add_argument("--name", metavar="N", help="display name of the person or system")
    cmd.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, metavar="SECONDS",
                     help=f"lifetime in seconds (default {DEFAULT_TTL_SECONDS})")
    cmd.set_defaults(run=_token)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="civicgrid", description="civicgrid platform tools")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    _add_token_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
