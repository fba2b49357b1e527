import sys

from services.kit.cli import main
from services.live.app import create_app
from services.live.config import LiveSettings

sys.exit(main(LiveSettings, create_app))
