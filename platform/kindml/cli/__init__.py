"""The thin `kindml` command line: argument parsing and printing only; the work is in the library."""
