"""`python -m fraudnet` runs the command line."""

from fraudnet.cli import main

main()
