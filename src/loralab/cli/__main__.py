"""`python -m loralab.cli ...`: the console script."""

from loralab.cli.main import main

if __name__ == "__main__":
    main()
