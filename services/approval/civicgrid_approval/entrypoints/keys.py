"""approval's key command: make the seal master key file once, before approval first starts.

    python -m civicgrid_approval.entrypoints.keys init [--file PATH] [--owner UID]

--file defaults to CIVICGRID_SEAL_MASTER_KEY_FILE, else the local stack's
.local/keys/approval-seal-master.key. An existing file is never replaced. docker-compose.yml's
job and deploy/k8s' Job `approval-keys` run it from approval's own image
(civicgrid_common.keyfiles says how).
"""
from __future__ import annotations

import sys

from civicgrid_common.keyfiles import key_command

from civicgrid_approval.adapters.keystore import MASTER_KEY_ENV, ensure_master_key, local_master_key_path
from civicgrid_approval.config import ApprovalSettings

main = key_command(
    "approval's seal master key",
    command="python -m civicgrid_approval.entrypoints.keys",
    setting=MASTER_KEY_ENV,
    default_file=lambda: ApprovalSettings().seal_master_key_file or local_master_key_path(),
    create=ensure_master_key,
)

if __name__ == "__main__":
    sys.exit(main())
