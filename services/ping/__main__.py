import sys

from services.kit.cli import main
from services.ping.app import create_app
from services.ping.config import PingSettings

sys.exit(main(PingSettings, create_app))
