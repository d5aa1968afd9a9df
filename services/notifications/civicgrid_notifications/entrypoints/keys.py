"""notifications' key command: make the webhook secrets' key file once, before notifications
first starts.

    python -m civicgrid_notifications.entrypoints.keys init [--file PATH] [--owner UID]

--file defaults to CIVICGRID_WEBHOOK_SECRETS_KEY_FILE, else the local stack's
.local/keys/notifications-webhook-secrets.key. An existing file is never replaced: the secrets
sealed under it would no longer open. docker-compose.yml's job and deploy/k8s' Job
`notifications-keys` run it from notifications' own image (civicgrid_common.keyfiles says how).
"""
from __future__ import annotations

import sys

from civicgrid_common.keyfiles import ensure_aes_key_file, key_command

from civicgrid_notifications.adapters.endpoints import KEY_FILE_ENV, local_key_path
from civicgrid_notifications.config import NotificationsSettings

main = key_command(
    "notifications' webhook secrets key",
    command="python -m civicgrid_notifications.entrypoints.keys",
    setting=KEY_FILE_ENV,
    default_file=lambda: NotificationsSettings().webhook_secrets_key_file or local_key_path(),
    create=ensure_aes_key_file,
)

if __name__ == "__main__":
    sys.exit(main())
