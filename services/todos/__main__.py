import sys

from services.kit.cli import main
from services.todos.app import MIGRATIONS, create_app
from services.todos.config import TodosSettings

sys.exit(main(TodosSettings, create_app, MIGRATIONS))
