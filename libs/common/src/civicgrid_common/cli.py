"""The `civicgrid` command: tools for developers and operators of the platform.

    civicgrid token --role window_clerk --jurisdiction 320104001
        prints a JWT the local stack accepts (signed with .local/keys/signing-key.pem)
    civicgrid dead-letters
        lists every record of the dead-letter topic: what it was, from where, who gave up and why

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


REBUILD_GROUP = "civicgrid.rebuild"  # services register `name = "module:function(verify: bool) -> int"`


def _rebuilders() -> dict[str, object]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=REBUILD_GROUP)}


def _rebuild(args: argparse.Namespace) -> int:
    found = _rebuilders()
    if args.name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        print(f"civicgrid rebuild: error: no read model named {args.name!r} (known: {known})", file=sys.stderr)
        return USAGE_ERROR
    return int(found[args.name].load()(verify=args.verify))  # type: ignore[attr-defined]


def _add_rebuild_command(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "rebuild",
        help="rebuild a service's read model from the log and swap it in if it equals the live one",
        description="Replay the topics from the beginning into a fresh version of a read model, compare "
                    "it with the live one and switch readers over when equal. Services register their "
                    f"read models under the entry-point group {REBUILD_GROUP}.",
    )
    cmd.add_argument("name", metavar="NAME", help="the read model, e.g. statistics")
    cmd.add_argument("--verify", action="store_true",
                     help="exit with status 1 unless the rebuilt version equals the live one")
    cmd.set_defaults(run=_rebuild)


def _dead_letters(args: argparse.Namespace) -> int:
    import asyncio

    from civicgrid_common.consumer.deadletter import read_dead_letters

    letters = asyncio.run(read_dead_letters(args.bootstrap, args.topic))
    for d in letters:
        print(f"{d.failed_at}  {d.event_type} from {d.source}, off {d.original_topic} ({d.consumer_group}): "
              f"{d.error_type.rsplit('.', 1)[-1]}: {d.error_message}")
    print(f"{len(letters)} dead letter(s) on {args.topic}")
    return 0


def _add_dead_letters_command(commands: argparse._SubParsersAction) -> None:
    from civicgrid_common.consumer.runtime import DEAD_LETTER_TOPIC
    from civicgrid_common.settings import PlatformSettings

    cmd = commands.add_parser(
        "dead-letters", help="list the dead-letter topic's records with the reason each was given up on",
        description="Read the dead-letter topic from its beginning (without a consumer group) and print each "
                    "record's event type, source, original topic, consumer group and error.")
    cmd.add_argument("--bootstrap", default=PlatformSettings().kafka_bootstrap, help="the Kafka bootstrap servers")
    cmd.add_argument("--topic", default=DEAD_LETTER_TOPIC)
    cmd.set_defaults(run=_dead_letters)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="civicgrid", description="civicgrid platform tools")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    _add_token_command(commands)
    _add_rebuild_command(commands)
    _add_dead_letters_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
