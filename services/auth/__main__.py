import sys

from services.auth.app import MIGRATIONS, create_app
from services.auth.commands import revoke_key, rotate_keys
from services.auth.config import AuthSettings
from services.kit.cli import main

sys.exit(main(AuthSettings, create_app, MIGRATIONS, commands={"rotate-keys": rotate_keys, "revoke-key": revoke_key}))
