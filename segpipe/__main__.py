"""``python -m segpipe``: the same as the ``segpipe`` console script."""

from segpipe.cli.app import main

if __name__ == "__main__":
    main()
