import sys

from services.kit.cli import main
from services.reports.app import MIGRATIONS, create_app
from services.reports.config import ReportsSettings

sys.exit(main(ReportsSettings, create_app, MIGRATIONS))
