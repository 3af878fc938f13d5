"""The ``hwscore`` command: the service, its workers, the database, keys, and the engine.

    hwscore serve              API + worker on the embedded default (SQLite, no servers)
    hwscore worker             a Celery worker on the configured broker
    hwscore migrate            upgrade the database schema
    hwscore keys create NAME   create an API key (the secret is printed once)
    hwscore keys list | revoke ID
    hwscore train | profiles   the engine, no server needed (hwmodels.cli)
    hwscore submit | status | wait | result | download | jobs | cancel
                               a client of a running service (app.client_commands)

Every command imports what it needs when it runs, so ``hwscore --help`` stays fast and
no command pulls in torch or FastAPI that does not use them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from app.client_commands import register as register_client_commands
from hwmodels.cli import EXIT_USAGE, OneLineParser
from hwmodels.cli import register as register_engine_commands

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hwscore",
        description="Score and train neural networks for accuracy on non-ideal "
        "neuromorphic hardware. Settings come from HWSCORE_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="run the API and workers on one machine (embedded default)"
    )
    serve.add_argument("--host", help="interface to listen on (default: HWSCORE_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: HWSCORE_PORT)")
    serve.add_argument("--workers", type=_positive, default=1, help="jobs run at once (default: 1)")
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker on the configured broker")
    worker.add_argument(
        "--concurrency", type=_positive, default=1, help="jobs this worker runs at once"
    )
    worker.add_argument("--name", default="hwscore@%h", help="Celery node name")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.set_defaults(func=_migrate)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = key_commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("name", help="who or what the key is for, e.g. 'ci' or 'alice'")
    create.set_defaults(func=_keys_create)
    key_commands.add_parser("list", help="list keys (never their secrets)").set_defaults(
        func=_keys_list
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=_keys_revoke)

    register_engine_commands(commands)
    register_client_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _serve(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.embedded import serve

    settings = get_settings()
    return serve(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
    )


def _worker(args: argparse.Namespace) -> int:
    from app.core.config import get_settings

    settings = get_settings()
    # Compiled engine kernels (hwmodels.fused) are cached across jobs and restarts.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.state_dir / "inductor-cache"))

    from workers.celery_app import QUEUE, celery_app

    # The pool processes inherit it and share the cores by it (configure_torch_threads).
    celery_app.conf.worker_concurrency = args.concurrency
    celery_app.worker_main(
        [
            "worker",
            f"--concurrency={args.concurrency}",
            # Celery reads "prefork" as the configured worker_pool, our kill-safe prefork.
            "--pool=prefork",
            f"--queues={QUEUE}",
            f"--hostname={args.name}",
            f"--loglevel={args.loglevel}",
            # Neither is needed (the job row is the source of truth), and the embedded
            # SQLite broker cannot broadcast.
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from app.core.config import get_settings
    from app.db.session import upgrade_database

    url = get_settings().resolved_database_url()
    upgrade_database(url)
    print(f"database is up to date: {make_url(url).render_as_string(hide_password=True)}")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from app.core.security import create_api_key
    from app.db.session import session_scope

    try:
        with session_scope() as session:
            key, secret = create_api_key(session, args.name)
            key_id = key.id
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created key {key_id} ({args.name.strip()})")
    print(f"secret (shown once, keep it safe): {secret}")
    print("use it as: Authorization: Bearer <secret>")
    return 0


def _keys_list(_: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.db.models import ApiKey
    from app.db.session import session_scope

    with session_scope() as session:
        keys = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        rows = [
            (
                key.id,
                key.name,
                key.prefix + "…",
                key.created_at.strftime("%Y-%m-%d %H:%M"),
                "revoked" if key.revoked_at else "active",
            )
            for key in keys
        ]
    if not rows:
        print("no API keys yet; create one with: hwscore keys create NAME")
        return 0
    for row in rows:
        print("  ".join(row))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from app.core.security import revoke_api_key
    from app.db.session import session_scope

    with session_scope() as session:
        revoked = revoke_api_key(session, args.id)
    if not revoked:
        print(f"error: no active key with id {args.id} (see: hwscore keys list)", file=sys.stderr)
        return 1
    print(f"revoked key {args.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
