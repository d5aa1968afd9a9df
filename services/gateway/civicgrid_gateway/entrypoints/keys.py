"""gateway's key command: make the session cookies' key file once, before the gateway first
starts.

    python -m civicgrid_gateway.entrypoints.keys init [--file PATH] [--owner UID]

--file defaults to CIVICGRID_SESSION_KEY_FILE, else the local stack's
.local/keys/gateway-session.key. An existing file is never replaced: every replica must keep
the same key (a new one signs everyone out). docker-compose.yml's job and deploy/k8s' Job
`gateway-keys` run it from the gateway's own image (civicgrid_common.keyfiles says how).
"""
from __future__ import annotations

import sys

from civicgrid_common.keyfiles import ensure_aes_key_file, key_command

from civicgrid_gateway.adapters.sign_in import KEY_FILE_ENV, local_key_path
from civicgrid_gateway.config import GatewaySettings

main = key_command(
    "the gateway's session cookies key",
    command="python -m civicgrid_gateway.entrypoints.keys",
    setting=KEY_FILE_ENV,
    default_file=lambda: GatewaySettings().session_key_file or local_key_path(),
    create=ensure_aes_key_file,
)

if __name__ == "__main__":
    sys.exit(main())
