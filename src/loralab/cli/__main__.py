"""`python -m loralab.cli ...`: the console script."""

from loralab.cli.main import main

main()
