"""`python -m kindml` runs the CLI."""

from kindml.cli.main import run

if __name__ == "__main__":
    run()
