import sys

from services.kit.cli import main
from services.reports.app import create_app
from services.reports.config import ReportsSettings
from services.reports.migrations import MIGRATIONS

sys.exit(main(ReportsSettings, create_app, MIGRATIONS))
