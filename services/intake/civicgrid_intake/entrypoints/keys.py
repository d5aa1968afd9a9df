"""intake's key command: make the personal-data keyring once, before intake first starts.

    python -m civicgrid_intake.entrypoints.keys init [--file PATH] [--owner UID]

--file defaults to CIVICGRID_PERSONAL_DATA_KEYRING, else the local stack's
.local/keys/personal-data-keyring.json. An existing file is never replaced. docker-compose.yml's
job and deploy/k8s' Job `intake-keys` run it from intake's own image
(civicgrid_common.keyfiles says how).
"""
from __future__ import annotations

import sys

from civicgrid_common.keyfiles import key_command

from civicgrid_intake.adapters.personal_data import KEYRING_ENV_VAR, ensure_local_keyring, local_keyring_path
from civicgrid_intake.config import IntakeSettings

main = key_command(
    "intake's personal-data keyring",
    command="python -m civicgrid_intake.entrypoints.keys",
    setting=KEYRING_ENV_VAR,
    default_file=lambda: IntakeSettings().personal_data_keyring or local_keyring_path(),
    create=ensure_local_keyring,
)

if __name__ == "__main__":
    sys.exit(main())
