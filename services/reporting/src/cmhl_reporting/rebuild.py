"""`python -m cmhl_reporting.rebuild`: rebuild every view from the log, then switch over."""

from cmhl_reporting.entrypoints.cli.rebuild import main

if __name__ == "__main__":
    main()
