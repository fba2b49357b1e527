import sys

from services.kit.cli import main
from services.todos.app import MIGRATIONS, create_app
from services.todos.config import TodosSettings
from services.todos.demo_data import seed_demo

sys.exit(main(TodosSettings, create_app, MIGRATIONS, commands={"seed-demo": seed_demo}))
